"""Processing one batch of source records: enrich, map, deduplicate, push, and account for every record.

A record is skipped when the target already holds exactly its mapped content (key + delivery hash: the
mapped record and where it goes, so a scheme pointed at another target pushes everything to it once); a
push is announced in the delivery state first, so one interrupted by a killed worker is looked up in
the target before it is pushed again. Retryable failures back off and try again; the rest go to the
dead-letter store with the source record, the mapped record and the error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from gateway.connectors.base import Connector, PushOutcome, Record
from gateway.errors import UnigateError, UpstreamError, VendorError, VendorRateLimited
from gateway.mapping import Mapping, MappingError, compile_mapping
from gateway.schemes import journal
from gateway.schemes.journal import FAILED, PENDING, SKIPPED, SUCCESS, UNAVAILABLE, Letter, Outcome
from gateway.schemes.model import Enrichment, Retry, SchemeDefinition, parse_definition
from gateway.store.scheme_tables import MappingVersion, Scheme, SchemeRun

log = logging.getLogger("unigate.schemes")
T = TypeVar("T")
# Enrichment lookups in flight for one batch.
ENRICH_CONCURRENCY = 8


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    """A work item: source records of one run (and, for a replay, the dead letter each came from)."""

    run: int
    scheme: int
    records: list[Record]


def retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts and an unreachable backend pass; a refusal in the vendor's words does not."""
    return isinstance(exc, VendorRateLimited) or (
        isinstance(exc, UpstreamError) and not isinstance(exc, VendorError)
    )


async def with_retries(retry: Retry, call: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """Call until it succeeds or fails for good; returns the answer and the attempts it took."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return await call(), attempt
        except UnigateError as exc:
            if not retryable(exc) or attempt == retry.attempts:
                exc.attempts = attempt  # type: ignore[attr-defined]
                raise
            await asyncio.sleep(backoff(retry, attempt))
    raise AssertionError("unreachable")


def backoff(retry: Retry, attempt: int) -> float:
    # Full jitter, so workers that failed together do not come back together.
    return random.uniform(0.5, 1.0) * min(
        retry.backoff_seconds * 2 ** (attempt - 1), retry.max_backoff_seconds
    )


def content_hash(record: Record) -> str:
    return hashlib.sha256(msgspec.json.encode(record, order="sorted")).hexdigest()


def destination(connector: Connector, operation: str, params: dict[str, Any]) -> bytes:
    """Where a scheme's records go: the target connection (its name, system and address), the operation
    and its parameters. Part of the delivery hash, so what the delivery state says the target holds is
    about this target: after a switch to another one (or another address), every record is new to it."""
    config = connector.config
    return msgspec.json.encode(
        {
            "connection": config.name,
            "system": config.system,
            "base_url": config.base_url.rstrip("/"),
            "operation": operation,
            "params": params,
        },
        order="sorted",
    )


def delivery_hash(where: bytes, record: Record) -> str:
    """What the delivery state compares: this mapped record, pushed to this destination."""
    return hashlib.sha256(where + b"\n" + msgspec.json.encode(record, order="sorted")).hexdigest()


class Context:
    """A scheme as one run uses it: definition, compiled mapping, connectors."""

    def __init__(
        self,
        scheme_id: int,
        name: str,
        definition: SchemeDefinition,
        mapping: Mapping | None,
        enrich_inputs: list[Mapping],
        connector: Callable[[str], Connector],
    ) -> None:
        self.scheme_id = scheme_id
        self.name = name
        self.definition = definition
        self.mapping = mapping
        self.enrich_inputs = enrich_inputs
        self.connector = connector
        target = connector(definition.target.connection)
        self.target_key = target.operation(definition.target.operation, "target").key
        self.destination = destination(target, definition.target.operation, definition.target.params)
        source = connector(definition.source.connection)
        self.source_key = source.operation(definition.source.operation, "source").key

    def key_of(self, record: Record) -> str | None:
        key = self.mapping.key_of(record) if self.mapping is not None else None
        if key in (None, "") and self.source_key:
            key = record.get(self.source_key)
        return None if key in (None, "") else str(key)


async def mapping_spec(name: str, version: int) -> dict[str, Any]:
    row = (
        await MappingVersion.select(MappingVersion.spec)
        .where(MappingVersion.ref == f"{name}@{version}")
        .output(load_json=True)
        .first()
    )
    if row is None:
        from gateway.errors import NotFound

        raise NotFound(f"there is no mapping {name!r} version {version}")
    return dict(row["spec"])


def enrich_mapping(step: Enrichment) -> Mapping:
    """The step's `inputs` are a mapping from the record to the lookup's parameters."""
    return compile_mapping({"name": f"enrich_{step.into}", "fields": step.inputs, "tables": step.tables})


class Contexts:
    """Contexts by run, built once per run and process (a run keeps the definition it started with)."""

    def __init__(self, connector: Callable[[str], Connector]) -> None:
        self.connector = connector
        self._by_run: dict[int, Context] = {}
        self._mappings: dict[str, Mapping] = {}

    async def get(self, run: int, scheme_id: int) -> Context:
        context = self._by_run.get(run)
        if context is None:
            context = await self.build(scheme_id, run)
            if len(self._by_run) > 64:
                self._by_run.clear()
            self._by_run[run] = context
        return context

    async def build(self, scheme_id: int, run: int | None = None) -> Context:
        """The scheme as the run started it (the definition it took when claimed), else as it is now."""
        row = (
            await Scheme.select(Scheme.name, Scheme.definition)
            .where(Scheme.id == scheme_id)
            .output(load_json=True)
            .first()
        )
        if row is None:
            from gateway.errors import NotFound

            raise NotFound(f"there is no scheme with id {scheme_id}")
        raw = row["definition"]
        if run is not None:
            started = (
                await SchemeRun.select(SchemeRun.options)
                .where(SchemeRun.id == run)
                .output(load_json=True)
                .first()
            )
            raw = ((started or {}).get("options") or {}).get("definition") or raw
        definition = parse_definition(raw)
        ref = f"{definition.mapping.name}@{definition.mapping.version}"
        mapping = self._mappings.get(ref)
        if mapping is None:
            mapping = compile_mapping(await mapping_spec(definition.mapping.name, definition.mapping.version))
            self._mappings[ref] = mapping
        inputs = [enrich_mapping(step) for step in definition.enrich]
        return Context(scheme_id, row["name"], definition, mapping, inputs, self.connector)


class _Item:
    """One record on its way through a batch."""

    __slots__ = ("attempts", "failure", "hash", "key", "mapped", "outcome", "source")

    def __init__(self, source: Record) -> None:
        self.source = source
        self.key: str = ""
        self.mapped: Record | None = None
        self.hash = ""
        self.attempts = 0
        self.failure: tuple[str, dict[str, Any]] | None = None  # (stage, error)
        self.outcome: Outcome | None = None

    def fail(self, stage: str, error: dict[str, Any]) -> None:
        self.failure = (stage, error)


def _error_of(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, UnigateError):
        return {
            "code": exc.code,
            "message": exc.detail,
            **{k: v for k, v in exc.extra.items() if k == "vendor"},
        }
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}


async def process(context: Context, batch: Batch) -> list[Outcome]:
    """Take every record of the batch to a final state and write it down; returns the outcomes."""
    items = [_Item(record) for record in batch.records]
    for n, item in enumerate(items):
        key = context.key_of(item.source)
        item.key = key or f"#{batch.run}-{n}-{content_hash(item.source)[:12]}"
        if key is None:
            item.fail("mapping", {"code": "invalid_record", "message": "the record has no key"})
    await _enrich(context, [item for item in items if item.failure is None])
    for item in items:
        if item.failure is None:
            try:
                assert context.mapping is not None
                item.mapped = context.mapping(item.source)
                item.hash = delivery_hash(context.destination, item.mapped)
            except MappingError as exc:
                item.fail("mapping", {"code": "mapping_error", "message": str(exc), "field": exc.field})
    await _deliver(context, batch, [item for item in items if item.failure is None])
    scheme = context.scheme_id
    for item in items:
        if item.failure is not None:
            stage, error = item.failure
            item.outcome = Outcome(
                key=item.key,
                status=FAILED,
                content_hash=item.hash,
                attempts=max(item.attempts, 1),
                answer=error.get("answer") or {},
                error=f"{stage}: {error.get('message', '')}",
            )
    outcomes = [item.outcome for item in items if item.outcome is not None]
    await journal.save_results(batch.run, scheme, outcomes)
    letters = [
        Letter(
            key=item.key,
            stage=item.failure[0],
            source_record=item.source,
            mapped_record=item.mapped,
            error=item.failure[1],
        )
        for item in items
        if item.failure is not None
    ]
    await journal.dead_letter(scheme, batch.run, letters)
    await journal.resolve_letters(scheme, [o.key for o in outcomes if o.status in (SUCCESS, SKIPPED)])
    return outcomes


async def enrich_records(context: Context, records: list[Record]) -> list[Record]:
    """Records enriched as a run would (errors kept in the record, as `on_error: keep` does)."""
    items = [_Item(record) for record in records]
    await _enrich(context, items)
    return [
        item.source if item.failure is None else {**item.source, "_error": item.failure[1]} for item in items
    ]


async def _enrich(context: Context, items: list[_Item]) -> None:
    steps = list(zip(context.definition.enrich, context.enrich_inputs, strict=True))
    if not steps:
        return
    gate = asyncio.Semaphore(ENRICH_CONCURRENCY)

    async def one(item: _Item) -> None:
        for step, inputs in steps:
            if item.failure is not None:
                return
            if step.when and item.source.get(step.when) in (None, ""):
                continue
            async with gate:
                await _enrich_one(context, step, inputs, item)

    await asyncio.gather(*(one(item) for item in items))


async def _enrich_one(context: Context, step: Enrichment, inputs: Mapping, item: _Item) -> None:
    connector = context.connector(step.connection)
    try:
        params = inputs(item.source)
    except MappingError as exc:
        item.fail(
            "enrich", {"code": "mapping_error", "message": f"enrich {step.into}: {exc}", "field": exc.field}
        )
        return
    try:
        answer, _ = await with_retries(
            context.definition.retry, lambda: connector.enrich(step.operation, params)
        )
    except UnigateError as exc:
        if retryable(exc) or step.on_error == "fail":
            item.attempts = getattr(exc, "attempts", 1)
            error = {**_error_of(exc), "message": f"enrich {step.into}: {exc.detail}"}
            if retryable(exc):
                error[UNAVAILABLE] = True
            item.fail("enrich", error)
            return
        # The lookup has nothing to say (no tracking yet): keep its answer and carry on.
        answer = {"message": exc.detail, **{k: v for k, v in exc.extra.items() if k == "vendor"}}
    answer = dict(answer)
    for target_field, source_field in step.copy.items():
        answer[target_field] = item.source.get(source_field)
    item.source = {**item.source, step.into: answer}


async def _deliver(context: Context, batch: Batch, items: list[_Item]) -> None:
    """Deduplicate, reconcile interrupted pushes, push the rest in vendor-sized chunks with retries."""
    if not items:
        return
    scheme = context.scheme_id
    target = context.definition.target
    connector = context.connector(target.connection)
    # The same record twice in one batch: the last copy wins.
    latest = {item.key: item for item in items}
    for item in items:
        if latest[item.key] is not item:
            item.outcome = Outcome(
                key=item.key, status=SKIPPED, content_hash=item.hash, answer={"duplicate": True}
            )
    items = list(latest.values())
    states = await journal.deliveries(scheme, [item.key for item in items])
    to_check: list[_Item] = []
    to_push: list[_Item] = []
    for item in items:
        state = states.get(item.key, journal.State())
        if state.delivered_hash == item.hash:
            item.outcome = Outcome(
                key=item.key, status=SKIPPED, content_hash=item.hash, answer={"unchanged": True}
            )
        elif state.pending_hash == item.hash and not state.delivered_hash:
            to_check.append(item)
        else:
            to_push.append(item)
    if to_check:
        to_push.extend(await _reconcile(context, connector, to_check))
    if not to_push:
        await journal.settle(
            scheme, {i.key: i.hash for i in items if i.outcome and i.outcome.status == SUCCESS}, []
        )
        return
    await journal.mark_pending(scheme, {item.key: item.hash for item in to_push})
    await journal.save_results(
        batch.run,
        scheme,
        [Outcome(key=item.key, status=PENDING, content_hash=item.hash) for item in to_push],
    )
    size = min(
        target.batch_size, connector.operation(target.operation, "target").max_batch or target.batch_size
    )
    for start in range(0, len(to_push), size):
        await _push(context, connector, to_push[start : start + size])
    delivered = {i.key: i.hash for i in items if i.outcome is not None and i.outcome.status == SUCCESS}
    await journal.settle(scheme, delivered, [i.key for i in to_push if i.key not in delivered])


async def _reconcile(context: Context, connector: Connector, items: list[_Item]) -> list[_Item]:
    """Records a killed worker was pushing: the ones the target already holds are done."""
    target = context.definition.target
    try:
        found, _ = await with_retries(
            context.definition.retry,
            lambda: connector.find_pushed(target.operation, [i.mapped or {} for i in items], target.params),
        )
    except UnigateError as exc:
        log.warning("could not look up interrupted pushes; pushing again", extra={"error": exc.detail})
        return items
    rest = []
    for item, present in zip(items, found, strict=True):
        if present:
            item.outcome = Outcome(
                key=item.key, status=SUCCESS, content_hash=item.hash, attempts=1, answer={"reconciled": True}
            )
        else:
            rest.append(item)
    return rest


async def _push(context: Context, connector: Connector, items: list[_Item]) -> None:
    target = context.definition.target
    retry = context.definition.retry
    waiting = items
    for attempt in range(1, retry.attempts + 1):
        try:
            outcomes = await connector.push(
                target.operation, [i.mapped or {} for i in waiting], target.params
            )
        except UnigateError as exc:
            failed = PushOutcome(ok=False, answer=exc.problem(), error=exc.detail, retryable=retryable(exc))
            outcomes = [failed] * len(waiting)
        again = []
        for item, outcome in zip(waiting, outcomes, strict=True):
            item.attempts = attempt
            if outcome.ok:
                item.outcome = Outcome(
                    key=item.key,
                    status=SUCCESS,
                    content_hash=item.hash,
                    attempts=attempt,
                    answer=outcome.answer,
                )
            elif outcome.retryable and attempt < retry.attempts:
                again.append(item)
            elif outcome.retryable:
                # Down or "too frequent" to the last attempt: the record was never judged by the target.
                item.fail(
                    "target",
                    {
                        "code": "target_unavailable",
                        "message": outcome.error or "unavailable",
                        "answer": outcome.answer,
                        UNAVAILABLE: True,
                    },
                )
            else:
                item.fail(
                    "target",
                    {
                        "code": "target_refused",
                        "message": outcome.error or "refused",
                        "answer": outcome.answer,
                    },
                )
        if not again:
            return
        waiting = again
        await asyncio.sleep(backoff(retry, attempt))
