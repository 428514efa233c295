"""Admin pages for schemes: the list with a form creating one, the designer (with start / stop / run-now,
full run, delete and run history, paged), and a run's per-record results with dead-letter replay. The
designer and run pages draw their live parts from /admin/api/... calls; the run history is drawn here and
refreshed by htmx. Creating and deleting are plain form posts, so they work without JavaScript."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import UnigateError
from gateway.schemes import service
from gateway.schemes.model import PRIORITIES
from portal.forms import Form, errors_of, text
from portal.nav import NavEntry, register
from portal.services import audit
from portal.services.principal import Principal
from portal.web import page, scheme_lease, t

register(NavEntry("admin", "/admin/schemes", "Schemes", order=60))
RUNS_PAGE = 20  # runs on a page of the run history
# The new-scheme form's fields where the service names them otherwise; a path under one of them (say
# `target.batch_size`, a limit of the operation chosen) goes beside its nearest parent listed here.
NEW_FORM_FIELDS = {
    "name": "name",
    "priority": "priority",
    "schedule": "schedule",
    "timezone": "schedule",
    "source": "source_connection",
    "source.operation": "source_operation",
    "target": "target_connection",
    "target.operation": "target_operation",
    "target.batch_size": "target_operation",
}
NEW_FORM_DRAWN = sorted({"description", *NEW_FORM_FIELDS.values()})


def _designer_url(name: str) -> str:
    return f"/admin/schemes/{quote(name, safe='')}"


async def _ends() -> dict[str, list[dict[str, Any]]]:
    """The connections offering source (and target) operations, each with those operations: the form's
    choices, from the catalogue the designer's selects are filled from."""
    catalogue = await service.catalogue()
    return {
        role: [
            {"name": entry["name"], "system": entry["system"], "operations": operations}
            for entry in catalogue
            if (operations := [op for op in entry["operations"] if op["role"] == role])
        ]
        for role in ("source", "target")
    }


async def _schemes_page(request: Request[Any, Any, Any], status_code: int = 200, **extra: Any) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    schemes = await service.list_schemes(lease_seconds=scheme_lease(request))
    # One notice for the page, as a scheme's page shows it: the worker is missing for all of them alike.
    waiting = next((row["waiting"] for row in schemes if row["waiting"]), None)
    return page(
        request,
        "schemes/list.html",
        status_code=status_code,
        title="Schemes",
        schemes=schemes,
        waiting=waiting,
        ends=await _ends(),
        priorities=PRIORITIES,
        drawn_fields=NEW_FORM_DRAWN,
        **extra,
    )


@get("/schemes")
async def schemes_page(request: Request[Any, Any, Any], deleted: str = "") -> Template:
    """The schemes and the form that creates one; `?deleted=NAME` says that one was deleted."""
    return await _schemes_page(request, deleted=deleted)


@post("/schemes", status_code=HTTP_303_SEE_OTHER)
async def create_scheme(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    """Create a scheme from the form, with a mapping to start from, and open it in the designer."""
    name = text(data, "name")
    definition: dict[str, Any] = {
        end: {"connection": text(data, f"{end}_connection"), "operation": text(data, f"{end}_operation")}
        for end in ("source", "target")
    }
    if schedule := text(data, "schedule"):
        definition["schedule"] = schedule
    try:
        created = await service.create_scheme(
            name,
            definition,
            description=text(data, "description"),
            priority=text(data, "priority") or "normal",
        )
        after = await service.scheme_definition(name)
        await audit.record(me, "scheme.create", name, after={**(after or {}), "mapping": created["mapping"]})
    except UnigateError as error:
        errors = errors_of(error, NEW_FORM_FIELDS)
        form = {key: text(data, key) for key in NEW_FORM_DRAWN}
        return await _schemes_page(request, status_code=error.status, errors=errors, form=form)
    return Redirect(_designer_url(name), status_code=HTTP_303_SEE_OTHER)


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


async def _designer(
    request: Request[Any, Any, Any],
    name: str,
    before: int | None = None,
    after: int | None = None,
    status_code: int = 200,
    refused: str = "",
) -> Template:
    scheme = await service.get_scheme(name)
    title = t(request, "Scheme {name}", name=name)
    history = await _run_history(request, name, before, after)
    return page(
        request,
        "schemes/designer.html",
        status_code=status_code,
        title=title,
        scheme=scheme,
        oob=False,
        refused=refused,
        **history,
    )


@get("/schemes/{name:str}")
async def designer_page(
    request: Request[Any, Any, Any], name: str, before: int | None = None, after: int | None = None
) -> Template:
    return await _designer(request, name, before, after)


@post("/schemes/{name:str}/delete", status_code=HTTP_303_SEE_OTHER)
async def delete_scheme(request: Request[Any, Any, Any], me: Principal, name: str) -> Template | Redirect:
    """Delete a scheme with its run history; refused while it runs (the designer says why), else the list."""
    try:
        before = await service.scheme_definition(name)
        await service.delete_scheme(name)
        await audit.record(me, "scheme.delete", name, before=before)
    except UnigateError as error:
        if error.status == 404:
            raise
        return await _designer(request, name, status_code=error.status, refused=error.detail)
    return Redirect(f"/admin/schemes?deleted={quote(name, safe='')}", status_code=HTTP_303_SEE_OTHER)


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


PAGES: list[Any] = [
    schemes_page,
    create_scheme,
    run_page,
    run_history,
    designer_page,
    delete_scheme,
]
STATIC = create_static_files_router(
    path="/static/schemes", directories=[Path(__file__).parent / "static"], include_in_schema=False
)
