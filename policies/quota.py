"""Policy: the plan's quotas per calendar day and calendar month, in the configured timezone.

`limits`' windows roll from the first call; a quota resets at midnight (or on the 1st) where the
business is, Asia/Shanghai by default. So each period is its own counter, named by the period
(`2026-03` / `2026-03-31`) and expiring after it, and the clock is injectable for tests.
Handler: `Quota` adds these counters to the tally `RateLimit` started and settles it (see
`policies.ratelimit.settle`): a refused request consumes neither rate limit nor quota. A counter that
does not exist yet starts from what the metered usage says was already used (policies/quota_seed.py),
and each admitted call is told to metering, which keeps that figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

from gateway import metrics
from gateway.errors import RateLimited
from policies.chain import Context, Gate
from policies.config import invalid
from policies.counters import KEEP_AFTER_PERIOD, Check, Counters
from policies.metering import UsageRecorder
from policies.quota_seed import QuotaSeeds
from policies.ratelimit import settle

if TYPE_CHECKING:
    from policies.authorize import EffectivePlan

Positive = Annotated[int, msgspec.Meta(ge=1, le=10_000_000_000)]
Unit = Literal["day", "month"]


class Quotas(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Calls allowed per calendar day and per calendar month (unset: no quota of that length)."""

    per_day: Positive | None = None
    per_month: Positive | None = None


def check_quotas(quotas: Quotas, field: str) -> Quotas:
    if quotas.per_day and quotas.per_month and quotas.per_month < quotas.per_day:
        raise invalid(
            f"{field}.per_month",
            f"{quotas.per_month} a month is less than the {quotas.per_day} a day also set; "
            "raise per_month or drop per_day",
        )
    return quotas


class Calendar:
    """The current day and month in one timezone: their names and when they end (unix time)."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self._cache: dict[Unit, tuple[float, float, str]] = {}

    def period(self, unit: Unit, now: float) -> tuple[str, float]:
        name, _, end = self.span(unit, now)
        return name, end

    def span(self, unit: Unit, now: float) -> tuple[str, float, float]:
        """The period's name, and when it starts and ends (unix time)."""
        cached = self._cache.get(unit)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2], cached[0], cached[1]
        day = datetime.fromtimestamp(now, self.tz).date()
        if unit == "day":
            start, end, name = day, day + timedelta(days=1), day.isoformat()
        else:
            start = day.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            name = f"{start.year:04d}-{start.month:02d}"
        span = (self._midnight(start), self._midnight(end), name)
        self._cache[unit] = span
        return name, span[0], span[1]

    def dates(self, now: float) -> tuple[date, str, date, str]:
        """Today and the month's first day, with their periods' names (off the hot path: seeds)."""
        today = datetime.fromtimestamp(now, self.tz).date()
        # Named by span, as the counters are: a seed is found by that name.
        return today, self.span("day", now)[0], today.replace(day=1), self.span("month", now)[0]

    def _midnight(self, day: date) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()


def quota_checks(quotas: Quotas, identifiers: tuple[str, ...], calendar: Calendar, now: float) -> list[Check]:
    return list(_quota_checks(quotas, identifiers, calendar, now)[0])


def _quota_checks(
    quotas: Quotas,
    identifiers: tuple[str, ...],
    calendar: Calendar,
    now: float,
    seeds: QuotaSeeds | None = None,
) -> tuple[tuple[Check, ...], float, float]:
    """The checks of the current periods, and the span of time (start, end) they stay the same for."""
    checks = []
    base = "/".join(("QUOTA", *identifiers))
    start, end = float("-inf"), float("inf")
    units: tuple[tuple[Unit, int | None], ...] = (("day", quotas.per_day), ("month", quotas.per_month))
    for unit, limit in units:
        if limit:
            name, begins, ends = calendar.span(unit, now)
            start, end = max(start, begins), min(end, ends)
            label = f"{limit} calls per {unit}"
            seed = seeds.seed(identifiers, unit, name) if seeds is not None else 0
            checks.append(Check.calendar(f"{base}/{unit}/{name}", limit, ends, label, now, seed))
    # Rebuilt at least hourly: a counter's expiry is counted from when its check was built.
    return tuple(checks), start, min(end, now + KEEP_AFTER_PERIOD)


@dataclass(frozen=True, slots=True)
class _Tally:
    """A subscription's whole tally (rate checks + quota checks) while its periods last."""

    rates: Sequence[Check]
    quotas: Quotas
    start: float
    end: float
    checks: tuple[Check, ...]
    generation: int  # of the seeds it was built with


class Quota(Gate):
    """Policy: add the subscription's calendar quotas to the tally and settle it (one counter round trip)."""

    def __init__(
        self,
        counters: Counters,
        timezone: str,
        clock: Callable[[], float] = time.time,
        *,
        recorder: UsageRecorder | None = None,
        seed_every: float = 30.0,
    ) -> None:
        """With a `recorder` (usage metering), admitted calls are metered for the seeds, and counters start
        from the metered use, refreshed every `seed_every` seconds and at each config change."""
        self.counters = counters
        self.calendar = Calendar(timezone)
        self.clock = clock
        self.recorder = recorder
        self.seeds = QuotaSeeds(recorder, seed_every, self.calendar.dates, clock) if recorder else None
        # By subscription (its counters' identifiers): the same tally object as long as nothing changes,
        # so the counters can reuse what they built for it (the Redis command).
        self._tallies: dict[tuple[str, ...], _Tally] = {}

    def tally(self, ctx: Context, now: float) -> Sequence[Check]:
        """The request's checks: RateLimit's, plus the quotas of the current day and month."""
        plan = ctx.plan
        if plan is None or not (plan.quotas.per_day or plan.quotas.per_month):
            return ctx.tally
        kept = self._tallies.get(plan.identifiers)
        generation = self.seeds.generation if self.seeds is not None else 0
        if (
            kept is not None
            and kept.rates is ctx.tally
            and kept.quotas is plan.quotas
            and kept.start <= now < kept.end
            and kept.generation == generation
        ):
            return kept.checks
        checks, start, end = _quota_checks(plan.quotas, plan.identifiers, self.calendar, now, self.seeds)
        kept = _Tally(ctx.tally, plan.quotas, start, end, (*ctx.tally, *checks), generation)
        self._tallies[plan.identifiers] = kept
        return kept.checks

    def _quotas_new(self, plan: EffectivePlan) -> bool:
        """The subscription's quotas are not those its counters on this node were last built with (or it
        has not called here since the node started)."""
        kept = self._tallies.get(plan.identifiers)
        return kept is None or kept.quotas != plan.quotas

    async def aclose(self) -> None:
        if self.seeds is not None:
            await self.seeds.aclose()
        close = getattr(self.counters, "aclose", None)
        if close is not None:
            await close()

    async def before(self, ctx: Context) -> None:
        now = self.clock()
        seeds = self.seeds
        plan = ctx.plan
        if (
            seeds is not None
            and plan is not None
            and (plan.quotas.per_day or plan.quotas.per_month)
            and seeds.stale_for(ctx.snapshot)
            and self._quotas_new(plan)
        ):
            # A quota newly set or changed in a new config: its counters start from the use metered until
            # now. Once per config version and node, and only for a quota that changed: other changes (a
            # key made, an app renamed) do not hold calls up.
            await seeds.ready(ctx.snapshot)
        ctx.tally = self.tally(ctx, now)
        try:
            await settle(ctx, self.counters, now)
        except RateLimited as refusal:
            consumer = ctx.consumer.name if ctx.consumer else ""
            metrics.limiter_rejected("quota" if refusal.code == "quota_exceeded" else "rate_limit", consumer)
            raise
        if self.recorder is not None and ctx.consumer is not None and ctx.api is not None:
            self.recorder.admit(ctx.consumer.id, ctx.api, now)
