"""Changes to schemes and mappings, and what the CLI and the portal read about them.

The CLI, the admin API and the pages all call these; none of them writes scheme tables directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from piccolo.query.functions.aggregate import Count

from gateway.connectors.base import Connector, OperationInfo, Record
from gateway.connectors.registry import SYSTEMS
from gateway.errors import Conflict, InvalidMapping, InvalidParameter, NotFound, UnigateError
from gateway.mapping import MappingError, MappingSpecError, compile_mapping, load_yaml
from gateway.schemes import driver, presence
from gateway.schemes.model import (
    DEFAULT_TIMEZONE,
    SchemeDefinition,
    check_priority,
    next_after,
    parse_definition,
)
from gateway.schemes.runner import Context, enrich_mapping, enrich_records, mapping_spec
from gateway.store.engine import atomic
from gateway.store.scheme_tables import (
    Checkpoint,
    DeadLetter,
    Delivery,
    MappingVersion,
    RecordResult,
    Scheme,
    SchemeRun,
)
from gateway.store.tables import Connection

TEMPLATES = Path(__file__).parent / "templates"
REFERENCE_SCHEME = "stockouts-to-wdt-target"
PREVIEW_MAX_RECORDS = 200
MAX_PAGE = 1000  # records or dead letters in one answer


# -- mappings --------------------------------------------------------------------------------------


def _issues(exc: MappingSpecError) -> list[dict[str, str]]:
    return [{"path": issue.path, "message": issue.message} for issue in exc.issues]


def check_mapping(spec: dict[str, Any], field: str = "spec") -> None:
    try:
        compile_mapping(spec)
    except MappingSpecError as exc:
        raise InvalidMapping(field, _issues(exc)) from None


async def save_mapping(spec: dict[str, Any], comment: str = "", *, base: int | None = None) -> dict[str, Any]:
    """Store a new version of the mapping named in the spec; returns {name, version}.

    `base` is the version the spec was edited from: when the spec is that version's unchanged, nothing is
    written and that version is answered, so saving a scheme whose mapping was not touched does not pile
    up identical versions."""
    if not isinstance(spec, dict):
        raise InvalidParameter("spec", "a mapping spec is a JSON object")
    check_mapping(spec)
    name = str(spec["name"])
    if base is not None:
        same = (
            await MappingVersion.select(MappingVersion.spec)
            .where((MappingVersion.name == name) & (MappingVersion.version == base))
            .output(load_json=True)
            .first()
        )
        if same is None:
            raise InvalidParameter("base", f"there is no mapping {name!r} version {base}")
        if same["spec"] == spec:
            return {"name": name, "version": base}
    latest = (
        await MappingVersion.select(MappingVersion.version)
        .where(MappingVersion.name == name)
        .order_by(MappingVersion.version, ascending=False)
        .first()
    )
    version = (latest["version"] if latest else 0) + 1
    await MappingVersion.insert(
        MappingVersion(ref=f"{name}@{version}", name=name, version=version, spec=spec, comment=comment)
    )
    return {"name": name, "version": version}


async def get_mapping(name: str, version: int | None = None) -> dict[str, Any]:
    query = MappingVersion.select().where(MappingVersion.name == name)
    if version is not None:
        query = query.where(MappingVersion.version == version)
    row = await query.order_by(MappingVersion.version, ascending=False).output(load_json=True).first()
    if row is None:
        raise NotFound(f"there is no mapping {name!r}" + (f" version {version}" if version else ""))
    return {"name": row["name"], "version": row["version"], "spec": row["spec"], "comment": row["comment"]}


async def list_mappings() -> list[dict[str, Any]]:
    rows = await MappingVersion.select(
        MappingVersion.name, MappingVersion.version, MappingVersion.comment, MappingVersion.created_at
    ).order_by(MappingVersion.name)
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["name"] not in latest or row["version"] > latest[row["name"]]["version"]:
            latest[row["name"]] = row
    return list(latest.values())


def preview(spec: Any, records: Any) -> dict[str, Any]:
    """Map sample records with a spec that need not be saved: mapped records and per-record errors."""
    if not isinstance(spec, dict):
        raise InvalidParameter("spec", "spec must be a mapping spec (a JSON object)")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidParameter("records", "records must be a list of JSON objects")
    if len(records) > PREVIEW_MAX_RECORDS:
        raise InvalidParameter("records", f"preview takes at most {PREVIEW_MAX_RECORDS} records")
    try:
        mapping = compile_mapping(spec)
    except MappingSpecError as exc:
        raise InvalidMapping("spec", _issues(exc)) from None
    results: list[dict[str, Any] | None] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            results.append(_plain(mapping(record)))
        except MappingError as exc:
            exc.index = index
            results.append(None)
            errors.append(exc.to_dict())
    return {"records": results, "errors": errors}


def _plain(value: Any) -> Any:
    """Decimals and dates as the JSON a target would receive."""
    return msgspec.json.decode(msgspec.json.encode(value))


# -- schemes ---------------------------------------------------------------------------------------


async def _check_ends(definition: SchemeDefinition) -> None:
    """The connections exist and offer the operations in the roles the scheme uses them in, and the
    mapping version it names exists."""
    names = {
        definition.source.connection,
        definition.target.connection,
        *(s.connection for s in definition.enrich),
    }
    rows = await Connection.select(Connection.name, Connection.system).where(
        Connection.name.is_in(list(names))
    )
    systems = {row["name"]: row["system"] for row in rows}
    uses = [
        ("source", definition.source.connection, definition.source.operation, "source"),
        ("target", definition.target.connection, definition.target.operation, "target"),
        *(
            (f"enrich.{n}", step.connection, step.operation, "enrich")
            for n, step in enumerate(definition.enrich)
        ),
    ]
    for place, connection, operation, role in uses:
        if connection not in systems:
            raise InvalidParameter(f"{place}.connection", f"there is no connection named {connection!r}")
        offered = {info.name: info for info in SYSTEMS[systems[connection]].operations if info.role == role}
        if operation not in offered:
            raise InvalidParameter(
                f"{place}.operation",
                f"{connection!r} has no {role} operation {operation!r}; "
                f"offered: {', '.join(offered) or 'none'}",
            )
        info = offered[operation]
        if role == "target" and info.max_batch and definition.target.batch_size > info.max_batch:
            raise InvalidParameter(
                "target.batch_size", f"{operation} takes at most {info.max_batch} records a call"
            )
    for n, step in enumerate(definition.enrich):
        try:
            enrich_mapping(step)
        except MappingSpecError as exc:
            raise InvalidMapping(f"enrich.{n}.inputs", _issues(exc)) from None
    try:
        await mapping_spec(definition.mapping.name, definition.mapping.version)
    except NotFound:
        # What the body names does not exist: a bad input, not a missing page.
        known = await MappingVersion.exists().where(MappingVersion.name == definition.mapping.name)
        field = "mapping.version" if known else "mapping.name"
        raise InvalidParameter(
            field,
            f"there is no mapping {definition.mapping.name!r}"
            + (f" version {definition.mapping.version}" if known else ""),
        ) from None


# /admin/api/schemes/<these> are fixed routes: a scheme so named could be listed but never read or saved.
RESERVED_NAMES = frozenset({"catalogue", "sample"})


def check_name(name: str) -> None:
    """A name that can be typed, read and put in a URL path: no blanks around it, no '/' or controls."""
    if not name or len(name) > 100:
        raise InvalidParameter("name", "a scheme needs a name of at most 100 characters")
    if name != name.strip() or "/" in name or any(not ch.isprintable() for ch in name):
        raise InvalidParameter(
            "name", "a scheme name has no spaces at either end, no '/' and no control characters"
        )
    if name in RESERVED_NAMES:
        raise InvalidParameter("name", f"{name!r} names a page of the admin API; choose another scheme name")


async def put_scheme(
    name: str,
    definition: Any,
    *,
    description: str = "",
    priority: str = "normal",
    enabled: bool | None = None,
    only_new: bool = False,
) -> int:
    """Create or replace a scheme's definition (checked against connections and the mapping version);
    `only_new`: create, refusing a name taken (as create_scheme's own check does, but at the write)."""
    check_name(name)
    parsed = parse_definition(definition)
    check_priority(priority)
    await _check_ends(parsed)
    raw = msgspec.to_builtins(parsed)
    existing = (
        await Scheme.select(Scheme.id, Scheme.definition)
        .where(Scheme.name == name)
        .output(load_json=True)
        .first()
    )
    values: dict[Any, Any] = {
        Scheme.definition: raw,
        Scheme.description: description,
        Scheme.priority: priority,
        Scheme.updated_at: datetime.now(UTC),
    }
    before = (existing or {}).get("definition") or {}
    if (before.get("schedule"), before.get("timezone")) != (parsed.schedule, parsed.timezone):
        # A new schedule starts again from now; any other edit keeps the next time it was due.
        values[Scheme.next_run_at] = None
    if enabled is not None:
        values[Scheme.enabled] = enabled
    if existing and only_new:
        raise Conflict(f"there is already a scheme named {name!r}", field="name")
    if existing:
        await Scheme.update(values).where(Scheme.id == existing["id"])
        return int(existing["id"])
    rows = await Scheme.insert(
        Scheme(name=name, definition=raw, description=description, priority=priority, enabled=bool(enabled))
    )
    return int(rows[0]["id"])


@atomic  # on PostgreSQL two creates of one name both pass the check; the second's insert is then re-run
async def create_scheme(
    name: str, definition: dict[str, Any], *, description: str = "", priority: str = "normal"
) -> dict[str, Any]:
    """A new scheme (a name taken is refused: put_scheme would replace it) with a mapping to start from: a
    version of the mapping named after the scheme that links the target's record key from the source's,
    the other target fields left to map in the designer. `definition` is put_scheme's without `mapping`;
    returns {id, name, mapping: {name, version}}."""
    check_name(name)
    if await Scheme.exists().where(Scheme.name == name):
        raise Conflict(f"there is already a scheme named {name!r}", field="name")
    parsed = parse_definition({**definition, "mapping": {"name": name, "version": 1}})
    # put_scheme checks the rest; what it refuses takes the mapping version saved here back with it (one
    # transaction), so a refused form leaves nothing behind.
    spec = await _starting_mapping(name, parsed)
    saved = await save_mapping(spec, comment=f"the start of scheme {name}")
    # only_new: another create may have committed this name since the check above (PostgreSQL's read
    # committed); put_scheme would replace its scheme.
    ident = await put_scheme(
        name, {**definition, "mapping": saved}, description=description, priority=priority, only_new=True
    )
    return {"id": ident, "name": name, "mapping": saved}


async def _starting_mapping(name: str, definition: SchemeDefinition) -> dict[str, Any]:
    """A spec that compiles (it needs one field at least): the target's key from the source's key, else
    the target's first field left empty."""
    rows = await Connection.select(Connection.name, Connection.system).where(
        Connection.name.is_in([definition.source.connection, definition.target.connection])
    )
    systems = {row["name"]: row["system"] for row in rows}

    def info(connection: str, operation: str, role: str) -> OperationInfo | None:
        found = operations_of(systems.get(connection, ""))
        return next((op for op in found if op.name == operation and op.role == role), None)

    source = info(definition.source.connection, definition.source.operation, "source")
    target = info(definition.target.connection, definition.target.operation, "target")
    spec: dict[str, Any] = {"name": name, "description": f"The mapping of scheme {name}"}
    if source and source.key:
        spec["key"] = source.key  # names a record in run results and dead letters
    if source and source.key and target and target.key and "." not in target.key:
        spec["fields"] = {target.key: {"from": source.key}}
    else:
        first = next(iter(target.fields), "id") if target else "id"
        spec["fields"] = {first.split(".")[0]: {"default": None}}
    return spec


async def scheme_definition(name: str) -> dict[str, Any] | None:
    """What an admin sets of a scheme (for the audit log): its definition, description, priority and
    whether its schedule is on; None when there is no such scheme."""
    row = (
        await Scheme.select(Scheme.definition, Scheme.description, Scheme.priority, Scheme.enabled)
        .where(Scheme.name == name)
        .output(load_json=True)
        .first()
    )
    return dict(row) if row is not None else None


async def scheme_id(name: str) -> int:
    row = await Scheme.select(Scheme.id).where(Scheme.name == name).first()
    if row is None:
        raise NotFound(f"there is no scheme named {name!r}")
    return int(row["id"])


async def get_scheme(name: str) -> dict[str, Any]:
    row = await Scheme.select().where(Scheme.name == name).output(load_json=True).first()
    if row is None:
        raise NotFound(f"there is no scheme named {name!r}")
    return row


async def delete_scheme(name: str) -> None:
    ident = await scheme_id(name)
    if await SchemeRun.exists().where(SchemeRun.scheme == ident, SchemeRun.status.is_in(list(driver.ACTIVE))):
        raise Conflict(f"scheme {name!r} is running; stop it first")
    # Its delivery state and checkpoint go with it: SQLite hands a deleted row's id to the next scheme,
    # which would otherwise start from this one's checkpoint and skip records it never delivered.
    for table in (RecordResult, DeadLetter, Delivery, Checkpoint):
        await table.delete().where(table.scheme == ident)
    await Scheme.delete().where(Scheme.id == ident)


async def list_schemes(*, lease_seconds: float = 15.0) -> list[dict[str, Any]]:
    """Every scheme with its status, last run, throughput (records/s) and error rate of the last run,
    `open_dead_letters` (what no run has delivered yet, whatever the last run says), and `waiting`: why
    its run does not move when no worker runs (None otherwise)."""
    schemes = await Scheme.select(
        Scheme.id, Scheme.name, Scheme.description, Scheme.priority, Scheme.enabled, Scheme.active_run,
        Scheme.next_run_at, Scheme.definition,
    ).order_by(Scheme.name).output(load_json=True)  # fmt: skip
    waiting = await _waiting(lease_seconds)
    letters = await open_dead_letters()
    out = []
    for row in schemes:
        last = (
            await SchemeRun.select()
            .where(SchemeRun.scheme == row["id"])
            .order_by(SchemeRun.id, ascending=False)
            .first()
        )
        definition = row.pop("definition") or {}
        row["schedule"] = definition.get("schedule")
        row["source"] = definition.get("source", {}).get("connection")
        row["target"] = definition.get("target", {}).get("connection")
        row["status"] = "running" if row["active_run"] else ("scheduled" if row["enabled"] else "idle")
        row["last_run"] = run_summary(last) if last else None
        row["waiting"] = waiting.get(row["id"])
        row["open_dead_letters"] = letters.get(row["id"], 0)
        out.append(row)
    return out


async def open_dead_letters(scheme: int | None = None) -> dict[int, int]:
    """Open dead letters by scheme id, of every scheme or of `scheme` (schemes with none are left out)."""
    query = DeadLetter.select(DeadLetter.scheme, Count(alias="n")).where(DeadLetter.status == "open")
    if scheme is not None:
        query = query.where(DeadLetter.scheme == scheme)
    rows = await query.group_by(DeadLetter.scheme)
    return {int(row["scheme"]): int(row["n"]) for row in rows}


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    started, finished = run.get("started_at"), run.get("finished_at")
    seconds = (finished - started).total_seconds() if started and finished else None
    done = run["succeeded"] + run["failed"] + run["skipped"]
    return {
        "id": run["id"],
        "trigger": run["trigger"],
        "status": run["status"],
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "pulled": run["pulled"],
        "total": run["total"],
        "succeeded": run["succeeded"],
        "failed": run["failed"],
        "skipped": run["skipped"],
        "throughput": round(done / seconds, 1) if seconds else None,
        "error_rate": round(run["failed"] / run["total"], 4) if run["total"] else 0.0,
        "error": run["error"],
    }


async def start(name: str) -> dict[str, Any]:
    """Turn the schedule on (its first run is at the schedule's next time)."""
    ident = await scheme_id(name)
    row = await get_scheme(name)
    definition = row["definition"] or {}
    schedule = definition.get("schedule")
    if not schedule:
        raise InvalidParameter("schedule", f"scheme {name!r} has no schedule; use run-now")
    if row["enabled"] and row["next_run_at"] is not None:
        return {"name": name, "enabled": True}  # started already: its next time stays as it was
    first = next_after(schedule, time.time(), definition.get("timezone") or DEFAULT_TIMEZONE)
    await Scheme.update({Scheme.enabled: True, Scheme.next_run_at: first}).where(Scheme.id == ident)
    return {"name": name, "enabled": True}


async def stop(name: str, *, lease_seconds: float = 15.0) -> dict[str, Any]:
    """Turn the schedule off and ask a run in progress to stop (its started batches finish); a run whose
    process ended without a worker taking it over (silent for `lease_seconds`) is ended here."""
    ident = await scheme_id(name)
    await Scheme.update({Scheme.enabled: False, Scheme.next_run_at: None}).where(Scheme.id == ident)
    await SchemeRun.update({SchemeRun.status: "stopped", SchemeRun.finished_at: datetime.now(UTC)}).where(
        SchemeRun.scheme == ident, SchemeRun.status == "queued"
    )
    await SchemeRun.update({SchemeRun.status: "stopping"}).where(
        SchemeRun.scheme == ident, SchemeRun.status == "running"
    )
    if (left := await driver.orphan(ident, lease_seconds)) is not None:
        await driver.end_orphan(left["id"], lease_seconds)
    return {"name": name, "enabled": False}


async def run_now(name: str, *, full: bool = False) -> int:
    """Queue a run for the workers; `full` reads the whole initial window again, whatever the checkpoint."""
    ident = await scheme_id(name)
    options = {"full": True} if full else {}
    # A second press while one waits for a worker is the same request: answer with the waiting run.
    waiting = (
        await SchemeRun.select(SchemeRun.id, SchemeRun.options)
        .where(SchemeRun.scheme == ident, SchemeRun.status == "queued", SchemeRun.trigger == "manual")
        .order_by(SchemeRun.id)
        .output(load_json=True)
    )
    for run in waiting:
        if (run["options"] or {}) == options:
            return int(run["id"])
    return await driver.create_run(ident, "manual", options)


async def replay(name: str, dead_letter_ids: list[int] | None = None) -> int:
    """Queue a run that pushes the given open dead letters (all when none given) with today's mapping."""
    ident = await scheme_id(name)
    query = DeadLetter.count().where(DeadLetter.scheme == ident, DeadLetter.status == "open")
    if dead_letter_ids:
        query = query.where(DeadLetter.id.is_in(dead_letter_ids))
    if not await query:
        raise InvalidParameter("dead_letters", "there are no open dead letters to replay")
    return await driver.create_run(ident, "replay", {"dead_letters": list(dead_letter_ids or [])})


@dataclass(frozen=True)
class Page:
    """One page of a list paged by id (keyset: a page stays the same while rows are added), in the order
    it is shown, and its neighbours: `before` is the id to ask `before=` for the page of lower ids, `after`
    the id to ask `after=` for the page of higher ids (None: there is no such page)."""

    rows: list[dict[str, Any]]
    before: int | None
    after: int | None
    newest_first: bool = False

    def links(self) -> dict[str, dict[str, int]]:
        """The queries of the pages shown just before ("prev") and after ("next") this one."""
        lower = None if self.before is None else {"before": self.before}
        higher = None if self.after is None else {"after": self.after}
        prev, next_ = (higher, lower) if self.newest_first else (lower, higher)
        return {rel: query for rel, query in (("prev", prev), ("next", next_)) if query is not None}


async def run_page(
    name: str,
    limit: int = 20,
    *,
    before: int | None = None,
    after: int | None = None,
    lease_seconds: float = 15.0,
) -> Page:
    """A page of a scheme's runs, newest first: the newest, or those just older than run `before`, or
    just newer than run `after`; each a run_summary (live counts while active) with `waiting`."""
    ident = await scheme_id(name)
    page = await _keyset(
        SchemeRun.select().where(SchemeRun.scheme == ident),
        SchemeRun,
        limit,
        before=before,
        after=after,
        newest_first=True,
    )
    active = any(row["status"] in driver.ACTIVE for row in page.rows)
    seen = await presence.last_seen(lease_seconds) if active else None
    summaries = []
    for row in page.rows:
        summary = run_summary(row)
        if row["status"] in driver.ACTIVE:  # counts are written at the end: read them live
            summary.update(await _live_counts(row["id"]))
        summary["waiting"] = presence.waiting(row, seen, lease_seconds) if seen else None
        summaries.append(summary)
    return replace(page, rows=summaries)


async def scheme_waiting(name: str, *, lease_seconds: float = 15.0) -> dict[str, Any] | None:
    """Why the scheme's queued (or driverless) run does not move, when no worker runs; None otherwise."""
    ident = await scheme_id(name)
    return (await _waiting(lease_seconds, ident)).get(ident)


async def _waiting(lease_seconds: float, scheme: int | None = None) -> dict[int, dict[str, Any]]:
    """By scheme id (of one scheme, or of all): why its first run that waits for a worker does not move
    (presence.waiting, with the run's id). Empty when no run waits, or a worker is alive."""
    query = SchemeRun.select(SchemeRun.id, SchemeRun.scheme, SchemeRun.status, SchemeRun.heartbeat_at).where(
        SchemeRun.status.is_in(list(driver.ACTIVE))
    )
    if scheme is not None:
        query = query.where(SchemeRun.scheme == scheme)
    active = await query.order_by(SchemeRun.id)
    if not active:
        return {}
    seen = await presence.last_seen(lease_seconds)
    found: dict[int, dict[str, Any]] = {}
    for row in active:
        if row["scheme"] not in found and (reason := presence.waiting(row, seen, lease_seconds)):
            found[row["scheme"]] = {**reason, "run": row["id"]}
    return found


async def _live_counts(run_id: int) -> dict[str, int]:
    from gateway.schemes import journal

    counts = await journal.counts(run_id)
    return {
        "succeeded": counts.get("success", 0),
        "failed": counts.get("failed", 0),
        "skipped": counts.get("skipped", 0),
        "pending": counts.get("pending", 0),
        "total": sum(counts.values()),
    }


async def run_detail(run_id: int, *, lease_seconds: float = 15.0) -> dict[str, Any]:
    """A run with its live counts (so a running run shows its progress), its scheme's
    `open_dead_letters`, and `waiting`: why it does not move when no worker runs (None otherwise)."""
    row = (
        await SchemeRun.select(*SchemeRun.all_columns(), SchemeRun.scheme.name.as_alias("scheme_name"))
        .where(SchemeRun.id == run_id)
        .first()
    )
    if row is None:
        raise NotFound(f"there is no run {run_id}")
    summary = {**run_summary(row), "scheme": row["scheme_name"], "waiting": None}
    summary["open_dead_letters"] = (await open_dead_letters(row["scheme"])).get(row["scheme"], 0)
    if row["status"] in driver.ACTIVE:
        summary.update(await _live_counts(run_id))
        summary["waiting"] = presence.waiting(row, await presence.last_seen(lease_seconds), lease_seconds)
    return summary


def records_answer(run_id: int, page: Page) -> dict[str, Any]:
    """A page of records as the admin API answers it: `next` and `previous` are the cursors of the pages
    either side (None at an end): ask `after=next`, `before=previous`."""
    return {"run": run_id, "records": page.rows, "previous": page.before, "next": page.after}


async def record_page(
    run_id: int,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    """A page of a run's per-record results in the order they were first written: from the start, or
    after record `after`, or before record `before` (keyset: ids in the answer)."""
    if status is not None and status not in ("pending", "success", "failed", "skipped"):
        raise InvalidParameter("status", "status must be pending, success, failed or skipped")
    _check_page(limit, offset)
    query = RecordResult.select(
        RecordResult.id,
        RecordResult.record_key,
        RecordResult.status,
        RecordResult.attempts,
        RecordResult.answer,
        RecordResult.error,
    ).where(RecordResult.run == run_id)
    if status:
        query = query.where(RecordResult.status == status)
    return await _keyset(query, RecordResult, limit, offset=offset, after=after, before=before)


async def _keyset(
    query: Any,
    table: Any,
    limit: int,
    *,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
    newest_first: bool = False,
) -> Page:
    """The page of `query` of the `limit` rows just below id `before`, or just above id `after`, or at the
    start (the highest ids when `newest_first`); `offset` skips that many rows from there first. An empty
    page reached by a cursor links back across it."""
    _check_cursors(before, after)
    # Read away from the cursor: down from `before` (from the top when newest first), else up from `after`.
    descending = before is not None or (after is None and newest_first)
    if before is not None:
        query = query.where(table.id < before)
    if after is not None:
        query = query.where(table.id > after)
    ordered = query.order_by(table.id, ascending=not descending)
    found = list(await ordered.limit(limit + 1).offset(offset).output(load_json=True))
    rows = found[:limit]
    # Rows beyond the page in the reading direction, and rows behind where the reading began.
    further, back = len(found) > limit, before is not None or after is not None or offset > 0
    lower, higher = (further, back) if descending else (back, further)
    if descending != newest_first:
        rows.reverse()
    # Nothing left past the cursor (say, the dead letters a replay resolved): the way back is the cursor
    # asked for, to the rows on its other side (ids are whole numbers: `after=5` is `before=6`).
    if not rows and before is not None:
        return Page(rows, before=None, after=before - 1, newest_first=newest_first)
    if not rows and after is not None:
        return Page(rows, before=after + 1, after=None, newest_first=newest_first)
    ids = [row["id"] for row in rows]
    return Page(
        rows,
        before=min(ids) if ids and lower else None,
        after=max(ids) if ids and higher else None,
        newest_first=newest_first,
    )


def _check_cursors(before: int | None, after: int | None) -> None:
    if before is not None and after is not None:
        raise InvalidParameter("after", "page with before or after, not both")


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidParameter("limit", f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidParameter("offset", "offset must not be negative")


async def dead_letter_page(
    name: str,
    *,
    status: str = "open",
    limit: int = 100,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    """A page of a scheme's dead letters, oldest first (keyset by id with `after` / `before`)."""
    if status not in ("open", "resolved"):
        raise InvalidParameter("status", "status must be open or resolved")
    _check_page(limit, offset)
    ident = await scheme_id(name)
    query = DeadLetter.select(
        DeadLetter.id, DeadLetter.record_key, DeadLetter.stage, DeadLetter.error, DeadLetter.status,
        DeadLetter.attempts, DeadLetter.run, DeadLetter.updated_at,
    ).where(DeadLetter.scheme == ident, DeadLetter.status == status)  # fmt: skip
    return await _keyset(query, DeadLetter, limit, offset=offset, after=after, before=before)


async def dead_letter(letter_id: int) -> dict[str, Any]:
    row = await DeadLetter.select().where(DeadLetter.id == letter_id).output(load_json=True).first()
    if row is None:
        raise NotFound(f"there is no dead letter {letter_id}")
    return row


# -- designer --------------------------------------------------------------------------------------


def operations_of(system: str) -> list[OperationInfo]:
    return list(SYSTEMS[system].operations) if system in SYSTEMS else []


async def catalogue() -> list[dict[str, Any]]:
    """Connections and the operations a scheme can use on each, for the designer's pickers."""
    rows = await Connection.select(Connection.name, Connection.system).order_by(Connection.name)
    return [
        {
            "name": row["name"],
            "system": row["system"],
            "operations": [msgspec.to_builtins(info) for info in operations_of(row["system"])],
        }
        for row in rows
    ]


async def sample(connector: Callable[[str], Connector], definition: Any, limit: int = 5) -> list[Record]:
    """A few source records, enriched as the scheme would, for the designer's live preview."""
    parsed = parse_definition(definition)
    source = connector(parsed.source.connection)
    now = datetime.now(UTC)
    since = datetime.fromtimestamp(time.time() - parsed.source.incremental.initial_days * 86400, UTC)
    records: list[Record] = []
    cursor: str | None = None
    for _ in range(20):  # a few vendor calls at most: empty windows and passes come first
        page = await source.pull(parsed.source.operation, parsed.source.params, since, now, cursor)
        records.extend(page.records)
        cursor = page.cursor
        if len(records) >= limit or cursor is None:
            break
    records = records[:limit]
    if parsed.enrich:
        context = Context(0, "sample", parsed, None, [enrich_mapping(s) for s in parsed.enrich], connector)
        records = await enrich_records(context, records)
    return records


# -- the reference template -----------------------------------------------------------------------


def template() -> dict[str, Any]:
    # Read as the mapping engine reads the same files (YAML 1.2), so what is installed is what is tested.
    document = load_yaml((TEMPLATES / f"{REFERENCE_SCHEME}.yaml").read_text(encoding="utf-8"))
    return dict(document)


async def install_template(*, source: str, target: str, tracking: str) -> int:
    """The reference scheme (stockouts with tracking -> trade_push), on the named connections."""
    document = template()
    spec = load_yaml((TEMPLATES / document["mapping_file"]).read_text(encoding="utf-8"))
    current = (
        await MappingVersion.select(MappingVersion.version, MappingVersion.spec)
        .where(MappingVersion.name == spec["name"])
        .order_by(MappingVersion.version, ascending=False)
        .output(load_json=True)
        .first()
    )
    if current is not None and current["spec"] == spec:
        version = int(current["version"])
    else:
        version = int((await save_mapping(spec, comment="the reference template"))["version"])
    definition = dict(document["definition"])
    definition["mapping"] = {"name": spec["name"], "version": version}
    definition["source"] = {**definition["source"], "connection": source}
    definition["target"] = {**definition["target"], "connection": target}
    definition["enrich"] = [{**step, "connection": tracking} for step in definition.get("enrich", [])]
    return await put_scheme(
        document["name"],
        definition,
        description=document.get("description", ""),
        priority=document["priority"],
    )


def problem_of(exc: Exception) -> dict[str, Any]:
    return exc.problem() if isinstance(exc, UnigateError) else {"detail": str(exc)}
