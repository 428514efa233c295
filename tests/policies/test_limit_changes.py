"""Limits changed while a window or a period is under way, on a real gateway process: an override or a
new plan applies to the calls already made, so lowering a limit below what is used refuses at once."""

from __future__ import annotations

from collections.abc import Awaitable

import httpx

from gateway.store import manage, policy_manage
from tests.conftest import Gateway
from tests.policies.p1_support import DEFAULTS, application, unique, until


async def synced(gateway: Gateway) -> None:
    """Wait until the node has every change made so far, without spending any counter: it reloads its
    whole config at once, so once it knows a key made now (403: not subscribed), it has the rest too."""
    key = (await manage.create_key(await manage.create_consumer(unique("sentinel"), DEFAULTS))).key
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:

        async def known() -> bool:
            return (await http.get("/v1/stockouts", params={"limit": 1})).status_code == 403

        await until(known, what="the config change")


def get(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return http.get("/v1/stockouts", params={"limit": 1})


async def test_an_override_below_the_calls_already_made_refuses_at_once(gateway: Gateway) -> None:
    consumer, key, _ = await application({"rate_limits": {"per_minute": 100}}, apis=("stockouts",))
    await synced(gateway)
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:
        assert [(await get(http)).status_code for _ in range(6)] == [200] * 6
        await policy_manage.set_consumer_policy(consumer, overrides={"rate_limits": {"per_minute": 4}})
        await synced(gateway)
        refused = await get(http)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert (refused.headers["ratelimit-limit"], refused.headers["ratelimit-remaining"]) == ("4", "0")
        # Raised again, the window keeps what it has used: 6 calls, so 2 of 8 are left.
        await policy_manage.set_consumer_policy(consumer, overrides={"rate_limits": {"per_minute": 8}})
        await synced(gateway)
        assert [(await get(http)).status_code for _ in range(3)] == [200, 200, 429]


async def test_a_plan_changed_mid_month_keeps_the_month_used(gateway: Gateway) -> None:
    _, key, plan = await application({"quotas": {"per_month": 50}}, apis=("stockouts",))
    await synced(gateway)
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:
        assert [(await get(http)).status_code for _ in range(5)] == [200] * 5
        await policy_manage.update_plan(plan, config={"quotas": {"per_month": 3}})
        await synced(gateway)
        refused = await get(http)
        assert (refused.status_code, refused.json()["code"]) == (429, "quota_exceeded")
        await policy_manage.update_plan(plan, config={"quotas": {"per_month": 7}})
        await synced(gateway)
        assert [(await get(http)).status_code for _ in range(3)] == [200, 200, 429]


async def test_an_override_tighter_than_the_plans_other_limit_is_applied_not_ignored(
    gateway: Gateway,
) -> None:
    """3 a minute under a plan of 5 a second breaks the rule for writing one plan (per_minute >= per_second),
    yet the admin's restriction must hold: the consumer gets 3 calls a minute, not the plan's 100."""
    consumer, key, _ = await application(
        {"rate_limits": {"per_second": 5, "per_minute": 100}}, apis=("stockouts",)
    )
    await policy_manage.set_consumer_policy(consumer, overrides={"rate_limits": {"per_minute": 3}})
    await synced(gateway)
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:
        answers = [await get(http) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["detail"].startswith("the limit of 3 calls per minute is reached")
