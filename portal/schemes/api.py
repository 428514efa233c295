"""Management API for schemes and mappings under /admin/api (admin only, like the whole router).

Thin handlers over gateway.schemes.service: the mapping preview, mapping versions, scheme
definitions, start / stop / run-now, run history with per-record results, dead letters and replay.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, delete, get, post, put

from gateway.schemes import service
from portal.services import audit
from portal.services.principal import Principal
from portal.web import scheme_lease


def _paged(request: Request[Any, Any, Any], body: Any, page: service.Page) -> Response[Any]:
    """`body` with a Link header (RFC 8288) to the pages shown before and after it: this request's query
    with the page's cursor, so a client follows the links rather than working the cursors out."""
    kept = {
        key: value for key, value in request.query_params.items() if key not in ("before", "after", "offset")
    }
    links = [
        f'<{request.url.path}?{urlencode({**kept, **query})}>; rel="{rel}"'
        for rel, query in page.links().items()
    ]
    return Response(body, headers={"Link": ", ".join(links)} if links else None)


class PreviewBody(msgspec.Struct, forbid_unknown_fields=True):
    spec: dict[str, Any]
    records: list[dict[str, Any]]


class MappingBody(msgspec.Struct, forbid_unknown_fields=True):
    spec: dict[str, Any]
    comment: str = ""
    base: int | None = None  # the version the spec was edited from: unchanged, no new version is written


class SchemeBody(msgspec.Struct, forbid_unknown_fields=True):
    definition: dict[str, Any]
    description: str = ""
    priority: str = "normal"
    enabled: bool | None = None


class RunBody(msgspec.Struct, forbid_unknown_fields=True):
    full: bool = False


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True):
    dead_letters: list[int] = []  # none: every open letter


class SampleBody(msgspec.Struct, forbid_unknown_fields=True):
    definition: dict[str, Any]
    limit: int = 5


@post(
    "/mappings/preview",
    summary="Map sample records with a spec (saved or not): records and per-record errors",
    status_code=200,  # nothing is created
)
async def preview_mapping(data: PreviewBody) -> dict[str, Any]:
    # Compiling and mapping a large sample is CPU work: in a thread, the event loop keeps serving meanwhile.
    return await asyncio.to_thread(service.preview, data.spec, data.records)


@get("/mappings", summary="Mappings, each at its latest version")
async def list_mappings() -> list[dict[str, Any]]:
    return await service.list_mappings()


@get("/mappings/{name:str}", summary="A mapping's spec (the latest version, or ?version=N)")
async def get_mapping(name: str, version: int | None = None) -> dict[str, Any]:
    return await service.get_mapping(name, version)


@post(
    "/mappings",
    summary="Save a spec as the next version of the mapping it names (201); with `base`, a spec unchanged "
    "from that version writes nothing and answers it (200)",
    status_code=201,
)
async def save_mapping(me: Principal, data: MappingBody) -> Response[dict[str, Any]]:
    saved = await service.save_mapping(data.spec, data.comment, base=data.base)
    unchanged = data.base is not None and saved["version"] == data.base
    if not unchanged:
        await audit.record(me, "mapping.save", f"{saved['name']}@{saved['version']}", after=data.spec)
    return Response(saved, status_code=200 if unchanged else 201)


@get("/schemes", summary="Schemes with status, last run, throughput, error rate, and why a run waits")
async def list_schemes(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return await service.list_schemes(lease_seconds=scheme_lease(request))


@get("/schemes/catalogue", summary="Connections and the source, target and enrich operations of each")
async def catalogue() -> list[dict[str, Any]]:
    return await service.catalogue()


@post(
    "/schemes/sample",
    summary="A few source records, enriched as a scheme would, for previews",
    status_code=200,
)
async def sample(request: Request[Any, Any, Any], data: SampleBody) -> list[dict[str, Any]]:
    runtime = request.app.state.runtime
    return await service.sample(runtime.connector, data.definition, max(1, min(data.limit, 20)))


@get("/schemes/{name:str}", summary="A scheme's definition, and why its run waits when no worker runs")
async def get_scheme(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    row = await service.get_scheme(name)
    keys = ("name", "description", "priority", "enabled", "definition", "active_run")
    waiting = await service.scheme_waiting(name, lease_seconds=scheme_lease(request))
    return {**{key: row[key] for key in keys}, "waiting": waiting}


@put("/schemes/{name:str}", summary="Create or replace a scheme", status_code=200)
async def put_scheme(me: Principal, name: str, data: SchemeBody) -> dict[str, Any]:
    before = await service.scheme_definition(name)
    ident = await service.put_scheme(
        name, data.definition, description=data.description, priority=data.priority, enabled=data.enabled
    )
    after = await service.scheme_definition(name)
    await audit.record(me, "scheme.put" if before else "scheme.create", name, before=before, after=after)
    return {"id": ident, "name": name}


@delete("/schemes/{name:str}", summary="Delete a scheme and its run history (not while it runs)")
async def delete_scheme(me: Principal, name: str) -> None:
    before = await service.scheme_definition(name)
    await service.delete_scheme(name)
    await audit.record(me, "scheme.delete", name, before=before)


@post("/schemes/{name:str}/start", summary="Turn the schedule on", status_code=200)
async def start_scheme(me: Principal, name: str) -> dict[str, Any]:
    started = await service.start(name)
    await audit.record(me, "scheme.start", name)
    return started


@post("/schemes/{name:str}/stop", summary="Turn the schedule off and stop a run in progress", status_code=200)
async def stop_scheme(request: Request[Any, Any, Any], me: Principal, name: str) -> dict[str, Any]:
    stopped = await service.stop(name, lease_seconds=scheme_lease(request))
    await audit.record(me, "scheme.stop", name)
    return stopped


@post("/schemes/{name:str}/run", summary="Queue a run now (full: ignore the checkpoint)", status_code=202)
async def run_scheme(me: Principal, name: str, data: RunBody | None = None) -> dict[str, Any]:
    full = bool(data and data.full)
    run = await service.run_now(name, full=full)
    await audit.record(me, "scheme.run", name, after={"run": run, "full": full})
    return {"run": run}


@get(
    "/schemes/{name:str}/runs",
    summary="Run history, newest first; ?before=<run id> for older runs, ?after=<run id> for newer "
    "(Link: rel=next, older; rel=prev, newer)",
)
async def list_runs(
    request: Request[Any, Any, Any],
    name: str,
    limit: int = 20,
    before: int | None = None,
    after: int | None = None,
) -> Response[list[dict[str, Any]]]:
    page = await service.run_page(
        name, max(1, min(limit, 200)), before=before, after=after, lease_seconds=scheme_lease(request)
    )
    return _paged(request, page.rows, page)


@get("/runs/{run_id:int}", summary="One run with live counts, and why it waits when no worker runs")
async def get_run(request: Request[Any, Any, Any], run_id: int) -> dict[str, Any]:
    return await service.run_detail(run_id, lease_seconds=scheme_lease(request))


@get(
    "/runs/{run_id:int}/records",
    summary="Per-record results (?status=failed for failures only), paged by ?after= / ?before= record id "
    "(next, previous and the Link header)",
)
async def run_records(
    request: Request[Any, Any, Any],
    run_id: int,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
) -> Response[dict[str, Any]]:
    page = await service.record_page(
        run_id, status=status, limit=limit, offset=offset, after=after, before=before
    )
    return _paged(request, service.records_answer(run_id, page), page)


@get(
    "/schemes/{name:str}/dead-letters",
    summary="Dead letters (open by default), oldest first, paged by ?after= / ?before= letter id "
    "(Link: rel=prev, rel=next)",
)
async def list_dead_letters(
    request: Request[Any, Any, Any],
    name: str,
    status: str = "open",
    limit: int = 100,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
) -> Response[list[dict[str, Any]]]:
    page = await service.dead_letter_page(
        name, status=status, limit=limit, offset=offset, after=after, before=before
    )
    return _paged(request, page.rows, page)


@get("/dead-letters/{letter_id:int}", summary="One dead letter: source record, mapped record, error")
async def get_dead_letter(letter_id: int) -> dict[str, Any]:
    return await service.dead_letter(letter_id)


@post(
    "/schemes/{name:str}/replay",
    summary="Queue a replay of open dead letters (all when none named)",
    status_code=202,
)
async def replay(name: str, data: ReplayBody | None = None) -> dict[str, Any]:
    return {"run": await service.replay(name, (data.dead_letters if data else []) or None)}


ROUTES: list[Any] = [
    preview_mapping,
    list_mappings,
    get_mapping,
    save_mapping,
    list_schemes,
    catalogue,
    sample,
    get_scheme,
    put_scheme,
    delete_scheme,
    start_scheme,
    stop_scheme,
    run_scheme,
    list_runs,
    get_run,
    run_records,
    list_dead_letters,
    get_dead_letter,
    replay,
]
