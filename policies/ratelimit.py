"""Policy: the plan's rate limits (per second, per minute), counted per subscription (consumer x API).

Schema: `RateLimits`. Handler: `RateLimit` adds the subscription's rate checks to the request's
tally; `Quota` (the next policy) adds the calendar quotas and settles everything in one step, so a
request costs one counter round trip and a refused request consumes nothing. `settle` also writes
the `RateLimit-*` headers every counted response carries.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond

from gateway.errors import QuotaExceeded, RateLimited, retry_after_seconds
from policies.chain import Context, Gate
from policies.config import invalid
from policies.counters import Check, Count, Counters, Verdict

STRATEGIES = ("sliding-window", "moving-window")
Positive = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]


class RateLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Calls allowed per second and per minute (unset: no limit of that length).

    `sliding-window` (the default) approximates the last minute from this window and the previous
    one, at constant cost; `moving-window` keeps every call's time and is exact, at a cost that
    grows with the limit: use it where the limit is a promise to a backend or a contract.
    """

    per_second: Positive | None = None
    per_minute: Positive | None = None
    strategy: str = "sliding-window"  # or "moving-window"


def check_rate_limits(limits: RateLimits, field: str) -> RateLimits:
    """Rules across fields, as Kong's rate-limiting schema has them."""
    if limits.strategy not in STRATEGIES:
        raise invalid(
            f"{field}.strategy", f"{limits.strategy!r} is not a strategy; use {' or '.join(STRATEGIES)}"
        )
    if limits.per_second and limits.per_minute and limits.per_minute < limits.per_second:
        raise invalid(
            f"{field}.per_minute",
            f"{limits.per_minute} a minute is less than the {limits.per_second} a second also set; "
            "raise per_minute or drop per_second",
        )
    return limits


def rate_checks(limits: RateLimits, identifiers: tuple[str, ...]) -> tuple[Check, ...]:
    """The checks for one subscription: built once per config snapshot, not per request."""
    exact = limits.strategy == "moving-window"
    items: list[tuple[RateLimitItem, str]] = []
    if limits.per_second:
        items.append((RateLimitItemPerSecond(limits.per_second), f"{limits.per_second} calls per second"))
    if limits.per_minute:
        items.append((RateLimitItemPerMinute(limits.per_minute), f"{limits.per_minute} calls per minute"))
    return tuple(Check.rate(item, identifiers, exact=exact, label=label) for item, label in items)


class RateLimit(Gate):
    """Policy: put the subscription's rate limits on the request's tally (see `settle`)."""

    def before(self, ctx: Context) -> None:
        if ctx.plan is not None:
            # The plan's own tuple, not a copy: the counters recognise it and reuse its Redis command.
            ctx.tally = (*ctx.tally, *ctx.plan.rate_checks) if ctx.tally else ctx.plan.rate_checks


async def settle(ctx: Context, counters: Counters, now: float) -> Verdict | None:
    """Count the tally in one step; add the RateLimit headers; raise 429 if any counter is full.

    The headers describe the counter with the least room left (on a tie, the one that stays
    closed longest): `RateLimit-Limit` its size, `RateLimit-Remaining` what is left after this
    request, `RateLimit-Reset` seconds until it has room again.
    """
    if not ctx.tally:
        return None
    verdict = await counters.acquire(ctx.tally, now)
    tightest, left = _tightest(verdict)
    ctx.response_headers += (
        (b"ratelimit-limit", b"%d" % tightest.check.limit),
        (b"ratelimit-remaining", b"%d" % left),
        (b"ratelimit-reset", b"%d" % math.ceil(tightest.reset)),
    )
    if verdict.allowed:
        return verdict
    refused = [count for count in verdict.counts if count.refused]
    quotas = [count for count in refused if count.check.quota]
    # A full quota outlasts any rate window: say so, and when it reopens.
    worst = max(quotas or refused, key=lambda count: count.reset)
    error = QuotaExceeded if quotas else RateLimited
    raise error(
        f"the limit of {worst.check.label} is reached; retry after {retry_after_seconds(worst.reset)} s",
        retry_after=worst.reset,
    )


def _tightest(verdict: Verdict) -> tuple[Count, int]:
    """The count with the least room left after this request (on a tie, the one closed longest); its room."""
    spent = 1 if verdict.allowed else 0
    best: Count | None = None
    best_left = 0
    for count in verdict.counts:
        left = max(0, count.check.limit - count.used - spent)
        if best is None or left < best_left or (left == best_left and count.reset > best.reset):
            best, best_left = count, left
    assert best is not None  # a tally is never empty here
    return best, best_left
