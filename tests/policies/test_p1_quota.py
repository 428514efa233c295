"""policies/quota.py: calendar quotas reset at the boundary of the configured timezone (time injected)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from gateway.errors import QuotaExceeded, RateLimited
from gateway.store.snapshot import EMPTY
from policies import close_chain
from policies.authorize import EffectivePlan
from policies.chain import Context
from policies.counters import Counters, MemoryCounters, RedisCounters
from policies.quota import Calendar, Quota, Quotas
from policies.ratelimit import RateLimits, rate_checks
from tests.policies.p1_support import until

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def plan(quotas: Quotas, rate: RateLimits = RateLimits(), consumer: str = "7") -> EffectivePlan:
    identifiers = (consumer, "orders")
    return EffectivePlan(
        subscription_id=1,
        status="active",
        name="test",
        priority=1,
        allowed=frozenset({"orders:read"}),
        identifiers=identifiers,
        rate_checks=rate_checks(rate, identifiers),
        quotas=quotas,
    )


async def call(policy: Quota, effective: EffectivePlan) -> dict[str, str]:
    """Run the policy for one request; the RateLimit headers it set."""
    ctx = Context({"type": "http"}, _noop, _noop, {}, "r", EMPTY, "orders", "orders:read")
    ctx.plan = effective
    ctx.tally = effective.rate_checks  # what RateLimit, the policy before, does

    async def handler(_: Context) -> None:
        return None

    await policy(ctx, handler)
    return {k.decode(): v.decode() for k, v in ctx.response_headers}


async def _noop(*_: Any) -> None:
    return None


@pytest.fixture(params=["redis", "memory"])
async def counters(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Counters]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    client = Redis.from_url(redis_url)
    yield RedisCounters(client)
    await client.aclose()


async def test_a_monthly_quota_resets_at_the_shanghai_month_boundary(counters: Counters) -> None:
    # 23:59:59 on 31 March in Shanghai is 15:59:59 UTC: still March in both.
    clock = Clock(datetime(2026, 3, 31, 23, 59, 59, tzinfo=SHANGHAI))
    policy = Quota(counters, "Asia/Shanghai", clock=clock)
    effective = plan(Quotas(per_month=3))
    remaining = [(await call(policy, effective))["ratelimit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(QuotaExceeded) as refused:
        await call(policy, effective)
    assert refused.value.status == 429 and refused.value.code == "quota_exceeded"
    assert refused.value.headers["Retry-After"] == "1"  # one second to midnight in Shanghai

    # Midnight in Shanghai is 16:00 UTC on 31 March: a UTC calendar would still say March.
    clock.set(datetime(2026, 4, 1, 0, 0, 0, tzinfo=SHANGHAI))
    assert datetime.fromtimestamp(clock(), ZoneInfo("UTC")).month == 3
    headers = await call(policy, effective)
    assert headers["ratelimit-limit"] == "3"
    assert headers["ratelimit-remaining"] == "2"
    assert int(headers["ratelimit-reset"]) == 30 * 86400  # April has 30 days


async def test_a_daily_quota_resets_at_midnight_and_the_tighter_quota_is_reported(counters: Counters) -> None:
    clock = Clock(datetime(2026, 5, 10, 23, 0, 0, tzinfo=SHANGHAI))
    policy = Quota(counters, "Asia/Shanghai", clock=clock)
    effective = plan(Quotas(per_day=2, per_month=100), consumer="8")
    first = await call(policy, effective)
    assert (first["ratelimit-limit"], first["ratelimit-remaining"], first["ratelimit-reset"]) == (
        "2",
        "1",
        "3600",
    )
    await call(policy, effective)
    with pytest.raises(QuotaExceeded):
        await call(policy, effective)
    clock.set(datetime(2026, 5, 11, 0, 0, 1, tzinfo=SHANGHAI))
    assert (await call(policy, effective))["ratelimit-remaining"] == "1"
    # The month counted every admitted call and none of the refused one: 3 of 100.
    clock.set(datetime(2026, 5, 11, 0, 0, 2, tzinfo=SHANGHAI))
    policy_month_only = Quota(counters, "Asia/Shanghai", clock=clock)
    headers = await call(policy_month_only, plan(Quotas(per_month=100), consumer="8"))
    assert headers["ratelimit-remaining"] == "96"


async def test_a_full_rate_limit_is_rate_limited_not_quota(counters: Counters) -> None:
    clock = Clock(datetime(2026, 5, 10, 12, 0, 0, tzinfo=SHANGHAI))
    policy = Quota(counters, "Asia/Shanghai", clock=clock)
    effective = plan(Quotas(per_day=100), RateLimits(per_minute=2), consumer="9")
    await call(policy, effective)
    await call(policy, effective)
    with pytest.raises(RateLimited) as refused:
        await call(policy, effective)
    assert refused.value.code == "rate_limited"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60


def test_calendar_periods_follow_the_timezone_including_daylight_saving() -> None:
    new_york = Calendar("America/New_York")
    # 2026-03-08 is 23 hours long in New York (clocks jump forward at 02:00).
    name, end = new_york.period(
        "day", datetime(2026, 3, 8, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    )
    assert name == "2026-03-08"
    assert end - datetime(2026, 3, 8, 0, 0, tzinfo=ZoneInfo("America/New_York")).timestamp() == 23 * 3600
    shanghai = Calendar("Asia/Shanghai")
    name, end = shanghai.period("month", datetime(2026, 12, 31, 23, 0, tzinfo=SHANGHAI).timestamp())
    assert name == "2026-12"
    assert end == datetime(2027, 1, 1, tzinfo=SHANGHAI).timestamp()


async def test_closing_the_chain_closes_the_counters_own_redis_connection(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    policy = Quota(RedisCounters(client), "Asia/Shanghai")
    try:
        await call(policy, plan(Quotas(per_day=5), consumer="10"))
        opened = len(await client.client_list())  # this client's own connection, and the counters'

        async def closed() -> bool:
            return len(await client.client_list()) == opened - 1

        await close_chain([policy])
        await until(closed, what="the counters' connection to close")
    finally:
        await client.aclose()
