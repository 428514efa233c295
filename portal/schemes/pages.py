"""Admin pages for schemes: the list, the designer (with start / stop / run-now and run history, paged),
and a run's per-record results with dead-letter replay. The designer and run pages draw their live parts
from /admin/api/... calls; the run history is drawn here and refreshed by htmx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.response import Template
from litestar.static_files import create_static_files_router

from gateway.schemes import service
from portal.nav import NavEntry, register
from portal.web import page, scheme_lease, t

register(NavEntry("admin", "/admin/schemes", "Schemes", order=60))
RUNS_PAGE = 20  # runs on a page of the run history


@get("/schemes")
async def schemes_page(request: Request[Any, Any, Any]) -> Template:
    schemes = await service.list_schemes(lease_seconds=scheme_lease(request))
    # One notice for the page, as a scheme's page shows it: the worker is missing for all of them alike.
    waiting = next((row["waiting"] for row in schemes if row["waiting"]), None)
    return page(request, "schemes/list.html", title="Schemes", schemes=schemes, waiting=waiting)


async def _run_history(
    request: Request[Any, Any, Any], name: str, before: int | None, after: int | None
) -> dict[str, Any]:
    """One page of the run history, newest first, and the cursors of the pages either side: keyset, so a
    page stays put while new runs arrive, and following "Older" from the first page reaches every run."""
    lease = scheme_lease(request)
    history = await service.run_page(name, RUNS_PAGE, before=before, after=after, lease_seconds=lease)
    if after is not None and history.after is None:
        # "Newer" reached the newest runs: that is the first page, drawn whole, and polled as the first
        # page is, so runs that start later appear on it.
        history, after = await service.run_page(name, RUNS_PAGE, lease_seconds=lease), None
    cursor = f"?before={before}" if before is not None else f"?after={after}" if after is not None else ""
    return {
        "scheme_name": name,
        "runs": history.rows,
        "newer": history.after,
        "older": history.before,
        "cursor": cursor,
        "waiting": await service.scheme_waiting(name, lease_seconds=lease),
    }


@get("/schemes/{name:str}")
async def designer_page(
    request: Request[Any, Any, Any], name: str, before: int | None = None, after: int | None = None
) -> Template:
    scheme = await service.get_scheme(name)
    title = t(request, "Scheme {name}", name=name)
    history = await _run_history(request, name, before, after)
    return page(request, "schemes/designer.html", title=title, scheme=scheme, oob=False, **history)


@get("/schemes/{name:str}/run-history")
async def run_history(
    request: Request[Any, Any, Any], name: str, before: int | None = None, after: int | None = None
) -> Template:
    """The run history alone (for htmx), with the worker notice of the designer page swapped in too."""
    history = await _run_history(request, name, before, after)
    return page(request, "schemes/_runs.html", oob=True, **history)


@get("/schemes/runs/{run_id:int}")
async def run_page(request: Request[Any, Any, Any], run_id: int) -> Template:
    run = await service.run_detail(run_id, lease_seconds=scheme_lease(request))
    title = t(request, "Run {run_id}", run_id=run_id)
    return page(request, "schemes/run.html", title=title, run=run, scheme=run["scheme"])


PAGES: list[Any] = [schemes_page, run_page, run_history, designer_page]
STATIC = create_static_files_router(
    path="/static/schemes", directories=[Path(__file__).parent / "static"], include_in_schema=False
)
