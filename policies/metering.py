"""Usage metering: calls, errors and latency buckets per consumer x API x day, and a few masked samples of
recent requests, added up in memory on the hot path and written in batches by a background task; plus the
Prometheus request metrics. It runs right after Authenticate, so requests refused later are counted too.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from piccolo.columns import Column, Varchar
from piccolo.querystring import QueryString

from gateway import metrics
from gateway.errors import UnigateError
from gateway.store.usage_tables import BUCKET_COLUMNS, LATENCY_BOUNDS_MS, RequestSample, UsageDaily
from policies import pii
from policies.chain import Context

log = logging.getLogger("unigate.metering")
# Refusals by a limiting policy: what `rejected` counts.
REJECTION_CODES = frozenset({"rate_limited", "quota_exceeded", "overloaded"})
# Samples a consumer may add between two flushes (the newest win): a burst cannot flood the table.
SAMPLES_PER_FLUSH = 20


class Sample(msgspec.Struct, frozen=True):
    consumer_id: int
    api: str
    connection: str
    method: str
    path: str
    query: str
    status: int
    code: str
    detail: str
    duration_ms: float
    request_id: str
    at: float  # unix time; made a datetime when stored, not on every request


class _Tally:
    __slots__ = ("admitted", "buckets", "calls", "errors", "latency_ms", "rejected")

    def __init__(self) -> None:
        self.calls = self.errors = self.rejected = self.admitted = 0
        self.latency_ms = 0.0
        self.buckets = [0] * len(BUCKET_COLUMNS)


class UsageRecorder:
    """Usage added up in memory; `flush` writes and forgets it. One per process."""

    def __init__(self, timezone: str, samples_per_consumer: int) -> None:
        self.tz = ZoneInfo(timezone)
        self.samples_per_consumer = samples_per_consumer
        self.tallies: dict[tuple[int, str, date], _Tally] = {}
        self.samples: dict[int, deque[Sample]] = {}
        self._day = date.min
        self._day_ends = 0.0

    def today(self, now: float) -> date:
        # The local day changes once a day: work it out then, not on every request.
        if now >= self._day_ends:
            local = datetime.fromtimestamp(now, self.tz)
            self._day = local.date()
            midnight = datetime.combine(self._day + timedelta(days=1), datetime.min.time(), self.tz)
            self._day_ends = midnight.timestamp()
        return self._day

    def record(
        self, consumer_id: int, api: str, status: int, code: str, duration_ms: float, now: float | None = None
    ) -> None:
        key = (consumer_id, api, self.today(time.time() if now is None else now))
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = _Tally()
        tally.calls += 1
        if status >= 400:
            tally.errors += 1
        if code in REJECTION_CODES:
            tally.rejected += 1
        tally.latency_ms += duration_ms
        tally.buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)] += 1

    def admit(self, consumer_id: int, api: str, now: float) -> None:
        """A call the rate limits and quotas let through (policies/quota.py): what a quota counts."""
        key = (consumer_id, api, self.today(now))
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = _Tally()
        tally.admitted += 1

    def unflushed_admitted(self) -> list[tuple[int, str, date, int]]:
        """The admitted calls counted here but not yet written: (consumer id, api, day, calls)."""
        return [(c, api, day, t.admitted) for (c, api, day), t in list(self.tallies.items()) if t.admitted]

    def sample(self, sample: Sample) -> None:
        kept = self.samples.get(sample.consumer_id)
        if kept is None:
            kept = self.samples[sample.consumer_id] = deque(maxlen=SAMPLES_PER_FLUSH)
        kept.append(sample)

    def take(self) -> tuple[dict[tuple[int, str, date], _Tally], list[Sample]]:
        tallies, self.tallies = self.tallies, {}
        samples, self.samples = self.samples, {}
        return tallies, [s for kept in samples.values() for s in kept]

    async def flush(self) -> None:
        """Write what was counted since the last flush; what fails to write is counted again next time."""
        tallies, samples = self.take()
        try:
            for key in list(tallies):
                await _add_usage(*key, tallies[key])
                # Written: not put back if a later row fails (its calls would be counted twice, and quota
                # counters start from these figures, policies/quota_seed.py).
                del tallies[key]
        except Exception:
            self._restore(tallies)
            raise
        if samples:
            await _store_samples(samples, self.samples_per_consumer)

    def _restore(self, tallies: dict[tuple[int, str, date], _Tally]) -> None:
        for key, tally in tallies.items():
            mine = self.tallies.setdefault(key, _Tally())
            mine.calls += tally.calls
            mine.errors += tally.errors
            mine.rejected += tally.rejected
            mine.admitted += tally.admitted
            mine.latency_ms += tally.latency_ms
            mine.buckets = [a + b for a, b in zip(mine.buckets, tally.buckets, strict=True)]


async def _add_usage(consumer_id: int, api: str, day: date, tally: _Tally) -> None:
    """Add to the day's row with one UPDATE (atomic across nodes), inserting it first if it is new."""
    bucket = f"{consumer_id}:{api}:{day.isoformat()}"
    increments: dict[Column | str, Any] = {
        UsageDaily.calls: UsageDaily.calls + tally.calls,
        UsageDaily.errors: UsageDaily.errors + tally.errors,
        UsageDaily.rejected: UsageDaily.rejected + tally.rejected,
        UsageDaily.admitted: UsageDaily.admitted + tally.admitted,
        # Piccolo has no arithmetic on Float columns: the same increment, written out.
        UsageDaily.latency_ms_sum: QueryString('"latency_ms_sum" + {}', tally.latency_ms),
    }
    for name, count in zip(BUCKET_COLUMNS, tally.buckets, strict=True):
        if count:
            column = getattr(UsageDaily, name)
            increments[column] = column + count
    for _ in range(2):
        updated = (
            await UsageDaily.update(increments).where(UsageDaily.bucket == bucket).returning(UsageDaily.id)
        )
        if updated:
            return
        try:
            await UsageDaily.insert(UsageDaily(bucket=bucket, consumer=consumer_id, api=api, day=day))
        except Exception:
            # Another node inserted the row first: add to it on the next pass.
            if not await UsageDaily.exists().where(UsageDaily.bucket == bucket):
                raise
    raise RuntimeError(f"usage row {bucket} could neither be updated nor inserted")


def _fit(column: Varchar, text: str) -> str:
    """`text` cut to its column: PostgreSQL refuses a longer value, and with it the whole batch."""
    return text[: column.length]


async def _store_samples(samples: list[Sample], keep: int) -> None:
    # The caller chose the request id (X-Request-ID) and the path; the connection is a checked name.
    await RequestSample.insert(
        *(
            RequestSample(
                consumer=s.consumer_id,
                api=_fit(RequestSample.api, s.api),
                connection=_fit(RequestSample.connection, s.connection),
                method=_fit(RequestSample.method, s.method),
                path=_fit(RequestSample.path, pii.mask_text(s.path)),
                query=pii.mask_query(s.query),
                status=s.status,
                code=_fit(RequestSample.code, s.code),
                detail=pii.mask_text(s.detail),
                duration_ms=s.duration_ms,
                request_id=_fit(RequestSample.request_id, pii.mask_text(s.request_id)),
                created_at=datetime.fromtimestamp(s.at, UTC),
            )
            for s in samples
        )
    )
    for consumer_id in {s.consumer_id for s in samples}:
        # Keep only the newest `keep` of each consumer.
        cutoff = (
            await RequestSample.select(RequestSample.id)
            .where(RequestSample.consumer == consumer_id)
            .order_by(RequestSample.id, ascending=False)
            .limit(1)
            .offset(keep)
        )
        if cutoff:
            await RequestSample.delete().where(
                (RequestSample.consumer == consumer_id) & (RequestSample.id <= cutoff[0]["id"])
            )


def connection_of(ctx: Context) -> str:
    """The connection a request went to, as policies/connection.py resolved and checked it; "" when it
    was refused before (or by) that check, so a caller cannot label its usage with a name of its choosing."""
    return ctx.connection.name if ctx.connection is not None else ""


class Metering:
    """Policy: count the request (usage and Prometheus) whatever the rest of the chain answers."""

    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None:
        error_body: list[bytes] = []
        send = ctx.send

        async def keep_error_body(message: dict[str, Any]) -> None:
            # Only an error's (small) problem body is kept, to sample its code and detail.
            if message["type"] == "http.response.body" and ctx.status >= 400:
                error_body.append(message.get("body", b""))
            await send(message)

        ctx.send = keep_error_body
        refused: UnigateError | None = None
        try:
            await call_next(ctx)
        except UnigateError as error:
            refused = error
            raise
        finally:
            self._count(ctx, refused, error_body)

    def _count(self, ctx: Context, refused: UnigateError | None, error_body: list[bytes]) -> None:
        consumer = ctx.consumer
        if consumer is None or ctx.api is None:
            return
        status = refused.status if refused is not None and not ctx.status else (ctx.status or 500)
        code, detail = "", ""
        if refused is not None:
            code, detail = refused.code, refused.detail
        elif status >= 400 and error_body:
            code, detail = _problem_of(b"".join(error_body))
        elapsed = time.perf_counter() - ctx.started
        duration_ms = elapsed * 1000
        self.recorder.record(consumer.id, ctx.api, status, code, duration_ms)
        connection = connection_of(ctx)
        route = str(ctx.scope.get("path_template") or ctx.path)
        metrics.request_answered(route, ctx.method, consumer.name, connection, status, elapsed)
        scope = ctx.scope
        self.recorder.sample(
            Sample(  # positional, in field order: built on every request
                consumer.id,
                ctx.api,
                connection,
                scope["method"],
                scope["path"],
                scope.get("query_string", b"").decode("latin-1"),
                status,
                code,
                detail,
                round(duration_ms, 2),
                ctx.request_id,
                time.time(),
            )
        )


def _problem_of(body: bytes) -> tuple[str, str]:
    try:
        problem = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "", ""
    if not isinstance(problem, dict):
        return "", ""
    return str(problem.get("code") or ""), str(problem.get("detail") or "")
