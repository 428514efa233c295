"""Policy: the plan's quotas per calendar day and calendar month, in the configured timezone.

`limits`' windows roll from the first call; a quota resets at midnight (or on the 1st) where the
business is, Asia/Shanghai by default. So each period is its own counter, named by the period
(`2026-03` / `2026-03-31`) and expiring after it, and the clock is injectable for tests.
Handler: `Quota` adds these counters to the tally `RateLimit` started and settles it (see
`policies.ratelimit.settle`): a refused request consumes neither rate limit nor quota.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

from gateway import metrics
from gateway.errors import RateLimited
from policies.chain import Context
from policies.config import invalid
from policies.counters import Check, Counters
from policies.ratelimit import settle

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
        cached = self._cache.get(unit)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2], cached[1]
        day = datetime.fromtimestamp(now, self.tz).date()
        if unit == "day":
            start, end, name = day, day + timedelta(days=1), day.isoformat()
        else:
            start = day.replace(day=1)
            end = (start + timedelta(days=32)).replace(day=1)
            name = f"{start.year:04d}-{start.month:02d}"
        span = (self._midnight(start), self._midnight(end), name)
        self._cache[unit] = span
        return name, span[1]

    def _midnight(self, day: date) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()


def quota_checks(quotas: Quotas, identifiers: tuple[str, ...], calendar: Calendar, now: float) -> list[Check]:
    checks = []
    base = "/".join(("QUOTA", *identifiers))
    units: tuple[tuple[Unit, int | None], ...] = (("day", quotas.per_day), ("month", quotas.per_month))
    for unit, limit in units:
        if limit:
            name, end = calendar.period(unit, now)
            label = f"{limit} calls per {unit}"
            checks.append(Check.calendar(f"{base}/{unit}/{name}", limit, end, label, now))
    return checks


class Quota:
    """Policy: add the subscription's calendar quotas to the tally and settle it (one counter round trip)."""

    def __init__(self, counters: Counters, timezone: str, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters
        self.calendar = Calendar(timezone)
        self.clock = clock

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None:
        now = self.clock()
        if ctx.plan is not None and (ctx.plan.quotas.per_day or ctx.plan.quotas.per_month):
            ctx.tally.extend(quota_checks(ctx.plan.quotas, ctx.plan.identifiers, self.calendar, now))
        try:
            await settle(ctx, self.counters, now)
        except RateLimited as refusal:
            consumer = ctx.consumer.name if ctx.consumer else ""
            metrics.limiter_rejected("quota" if refusal.code == "quota_exceeded" else "rate_limit", consumer)
            raise
        await call_next(ctx)
