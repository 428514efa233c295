"""Admin pages for schemes: the list, the designer (with start / stop / run-now and run history), and a
run's per-record results with dead-letter replay. The pages draw themselves from /admin/api/... calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.response import Template
from litestar.static_files import create_static_files_router

from gateway.schemes import service
from portal.nav import NavEntry, register
from portal.web import page, t

register(NavEntry("admin", "/admin/schemes", "Schemes", order=60))


@get("/schemes")
async def schemes_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "schemes/list.html", title="Schemes", schemes=await service.list_schemes())


@get("/schemes/{name:str}")
async def designer_page(request: Request[Any, Any, Any], name: str) -> Template:
    scheme = await service.get_scheme(name)
    title = t(request, "Scheme {name}", name=name)
    return page(request, "schemes/designer.html", title=title, scheme=scheme)


@get("/schemes/runs/{run_id:int}")
async def run_page(request: Request[Any, Any, Any], run_id: int) -> Template:
    run = await service.run_detail(run_id)
    title = t(request, "Run {run_id}", run_id=run_id)
    return page(request, "schemes/run.html", title=title, run=run, scheme=run["scheme"])


PAGES: list[Any] = [schemes_page, run_page, designer_page]
STATIC = create_static_files_router(
    path="/static/schemes", directories=[Path(__file__).parent / "static"], include_in_schema=False
)
