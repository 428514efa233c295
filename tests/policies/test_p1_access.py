"""Subscriptions, plans, IP lists, the body cap, CORS and the RateLimit headers, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from gateway.errors import Conflict, InvalidParameter
from gateway.store import manage, policy_manage
from gateway.store.tables import Consumer
from tests.conftest import Gateway
from tests.policies.backends import gateway_processes
from tests.policies.p1_support import DEFAULTS, application, unique, until

ORDER = {"shop": "S1", "order_no": "X1", "lines": []}  # refused by the handler, after every policy


def keyed(gateway: Gateway, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"})


async def settled(
    http: httpx.AsyncClient, method: str, path: str, expect: int, **kwargs: object
) -> httpx.Response:
    """The answer once the node has the test's config (it reloads within ~0.2 s here)."""
    answer: httpx.Response | None = None

    async def check() -> bool:
        nonlocal answer
        answer = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
        return answer.status_code == expect

    await until(check, what=f"{method} {path} answering {expect}")
    assert answer is not None
    return answer


async def test_a_consumer_needs_an_active_subscription(gateway: Gateway) -> None:
    consumer = await manage.create_consumer(unique("app"), DEFAULTS)
    key = (await manage.create_key(consumer)).key
    plan = unique("approved")
    await policy_manage.create_plan(plan, {}, requires_approval=True)
    async with keyed(gateway, key) as http:
        refused = await settled(http, "GET", "/v1/stockouts", 403, params={"limit": 1})
        assert refused.json()["code"] == "not_subscribed"
        assert "not subscribed to the stockouts API" in refused.json()["detail"]

        subscription = await policy_manage.subscribe(consumer, "stockouts", plan)
        assert subscription["status"] == "pending"
        pending = await settled(http, "GET", "/v1/stockouts", 403, params={"limit": 1})
        await until(lambda: _detail_has(http, "awaiting approval"), what="the pending subscription")
        assert pending.json()["code"] == "not_subscribed"

        await policy_manage.approve_subscription(subscription["id"])
        await settled(http, "GET", "/v1/stockouts", 200, params={"limit": 1})
        await policy_manage.set_subscription_status(subscription["id"], "suspended")
        await settled(http, "GET", "/v1/stockouts", 403, params={"limit": 1})
        # Subscribed to stockouts only: orders stay closed.
        assert (await http.get("/v1/orders", params={"limit": 1})).json()["code"] == "not_subscribed"


async def _detail_has(http: httpx.AsyncClient, text: str) -> bool:
    return text in (await http.get("/v1/stockouts", params={"limit": 1})).text


async def test_a_read_only_plan_refuses_writes(gateway: Gateway) -> None:
    _, key, _ = await application({"apis": ["orders:read", "stockouts"]}, apis=("orders", "stockouts"))
    async with keyed(gateway, key) as http:
        await settled(http, "GET", "/v1/orders", 200, params={"limit": 1})
        refused = await http.post("/v1/orders", json=ORDER)
        assert refused.status_code == 403
        assert refused.json()["code"] == "not_in_plan"


async def test_subscribing_checks_the_api_and_the_plan(gateway: Gateway) -> None:
    consumer = await manage.create_consumer(unique("app"), DEFAULTS)
    plan = unique("orders-only")
    await policy_manage.create_plan(plan, {"apis": ["orders"]})
    with pytest.raises(InvalidParameter) as wrong_api:
        await policy_manage.subscribe(consumer, "invoices", plan)
    assert wrong_api.value.field == "api"
    with pytest.raises(InvalidParameter) as not_covered:
        await policy_manage.subscribe(consumer, "stockouts", plan)
    assert not_covered.value.field == "plan"
    await policy_manage.subscribe(consumer, "orders", plan)
    with pytest.raises(Conflict):
        await policy_manage.subscribe(consumer, "orders", plan)
    with pytest.raises(Conflict):
        await policy_manage.delete_plan(plan)


async def test_ip_rules_deny_and_allow(gateway: Gateway) -> None:
    consumer, key, _ = await application(apis=("stockouts",))
    async with keyed(gateway, key) as http:
        await settled(http, "GET", "/v1/stockouts", 200, params={"limit": 1})
        await policy_manage.set_consumer_policy(consumer, ip_deny=["127.0.0.0/8"])
        refused = await settled(http, "GET", "/v1/stockouts", 403, params={"limit": 1})
        assert refused.json()["code"] == "ip_forbidden"
        assert "127.0.0.1" in refused.json()["detail"]

        await policy_manage.set_consumer_policy(consumer, ip_deny=[], ip_allow=["10.0.0.0/8", "192.168.1.7"])
        await until(partial(_detail_has, http, "not on this application's list"), what="the allow list")
        await policy_manage.set_consumer_policy(consumer, ip_allow=["10.0.0.0/8", "127.0.0.1"])
        await settled(http, "GET", "/v1/stockouts", 200, params={"limit": 1})
    with pytest.raises(InvalidParameter) as bad:
        await policy_manage.set_consumer_policy(consumer, ip_allow=["10.0.0.0/8", "10.0.0.256"])
    assert bad.value.field == "ip_allow[1]"


async def test_a_body_over_the_apis_cap_is_413(gateway: Gateway) -> None:
    _, key, _ = await application(apis=("orders",))
    await policy_manage.set_api_policy("orders", max_body_bytes=512)
    try:
        async with keyed(gateway, key) as http:
            big = {**ORDER, "remark": "x" * 1000}
            refused = await settled(http, "POST", "/v1/orders", 413, json=big)
            assert refused.json()["code"] == "payload_too_large"

            async def chunks() -> AsyncIterator[bytes]:
                # No Content-Length: chunked. One chunk, so the client has sent it all before the 413.
                yield b" " * 1000

            chunked = await http.post(
                "/v1/orders", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert chunked.status_code == 413
            assert chunked.json()["code"] == "payload_too_large"
            small = await http.post("/v1/orders", json=ORDER)
            assert small.status_code not in (413, 403, 429)
    finally:
        await policy_manage.set_api_policy("orders", max_body_bytes=None)


async def test_cors_preflight_and_headers_on_every_answer(gateway: Gateway) -> None:
    _, key, _ = await application(apis=("logistics",))
    origin = "https://shop.example.com"
    await policy_manage.set_api_policy("logistics", cors={"allow_origins": [origin]})
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            preflight = {
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, x-connection",
            }
            answer = await settled(http, "OPTIONS", "/v1/logistics/tracking", 204, headers=preflight)
            assert answer.headers["access-control-allow-origin"] == origin
            assert "GET" in answer.headers["access-control-allow-methods"]
            assert "X-Connection" in answer.headers["access-control-allow-headers"]
            assert answer.headers["vary"] == "Origin"

            other = await http.options(
                "/v1/logistics/tracking", headers={**preflight, "Origin": "https://evil.example"}
            )
            assert other.status_code == 403 and other.json()["code"] == "cors_rejected"
            assert "access-control-allow-origin" not in other.headers
            header = await http.options(
                "/v1/logistics/tracking", headers={**preflight, "Access-Control-Request-Headers": "x-secret"}
            )
            assert header.json()["code"] == "cors_rejected"
            closed = await http.options("/v1/stockouts", headers=preflight)
            assert closed.status_code == 403

            # A refusal carries the CORS headers too, so the page can read it.
            anonymous = await http.get("/v1/logistics/tracking", headers={"Origin": origin})
            assert anonymous.status_code == 401
            assert anonymous.headers["access-control-allow-origin"] == origin
            assert "RateLimit-Remaining" in anonymous.headers["access-control-expose-headers"]
            known = await http.get(
                "/v1/logistics/tracking",
                params={"carrier": "zhongtong", "tracking_no": "ZT0"},
                headers={"Origin": origin, "Authorization": f"Bearer {key}"},
            )
            assert known.headers["access-control-allow-origin"] == origin
    finally:
        await policy_manage.set_api_policy("logistics", cors={})


async def test_every_counted_answer_carries_ratelimit_headers_and_429_says_when(gateway: Gateway) -> None:
    consumer, key, _ = await application(
        {"rate_limits": {"per_minute": 3}, "quotas": {"per_day": 100}}, apis=("stockouts",)
    )
    async with keyed(gateway, key) as http:
        first = await settled(http, "GET", "/v1/stockouts", 200, params={"limit": 1})
        assert first.headers["ratelimit-limit"] == "3"
        assert first.headers["ratelimit-remaining"] == "2"
        assert 0 < int(first.headers["ratelimit-reset"]) <= 60
        answers = [await http.get("/v1/stockouts", params={"limit": 1}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        refused = answers[-1].json()
        assert refused["code"] == "rate_limited" and refused["status"] == 429
        assert "3 calls per minute" in refused["detail"]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # The words say the wait the header says.
        assert refused["detail"].endswith(f"retry after {answers[-1].headers['retry-after']} s")
        assert answers[-1].headers["ratelimit-remaining"] == "0"
        # Operators see the refusal too, by policy and consumer.
        name = (await Consumer.select(Consumer.name).where(Consumer.id == consumer).first() or {})["name"]
        metrics = (await http.get("/metrics")).text
        assert f'unigate_limiter_rejections_total{{consumer="{name}",policy="rate_limit"}} 1.0' in metrics


async def test_consumer_overrides_replace_the_plans_limits(gateway: Gateway) -> None:
    consumer, key, _ = await application({"rate_limits": {"per_minute": 2}}, apis=("stockouts",))
    await policy_manage.set_consumer_policy(consumer, overrides={"rate_limits": {"per_minute": 50}})
    async with keyed(gateway, key) as http:
        answer = await settled(http, "GET", "/v1/stockouts", 200, params={"limit": 1})
        await until(partial(_limit_is, http, "50"), what="the override")
        with pytest.raises(InvalidParameter) as bad:
            await policy_manage.set_consumer_policy(consumer, overrides={"rate_limits": {"per_minute": 0}})
        assert bad.value.field == "overrides.rate_limits.per_minute"
        assert answer.status_code == 200


async def _limit_is(http: httpx.AsyncClient, limit: str) -> bool:
    return (await http.get("/v1/stockouts", params={"limit": 1})).headers.get("ratelimit-limit") == limit


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"rate_limits": {"per_second": 0}}, "config.rate_limits.per_second"),
        ({"rate_limits": {"per_second": 10, "per_minute": 5}}, "config.rate_limits.per_minute"),
        ({"rate_limits": {"strategy": "token-bucket"}}, "config.rate_limits.strategy"),
        ({"quotas": {"per_day": 100, "per_month": 50}}, "config.quotas.per_month"),
        ({"quotas": {"per_day": "lots"}}, "config.quotas.per_day"),
        ({"priority": "vip"}, "config.priority"),
        ({"apis": ["orders", "invoices"]}, "config.apis[1]"),
        ({"burst": 5}, "config"),
    ],
)
async def test_a_bad_plan_is_refused_naming_the_field(
    gateway: Gateway, config: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParameter) as refused:
        await policy_manage.create_plan(unique("bad"), config)
    assert refused.value.field == field
    assert refused.value.detail.startswith(field)


async def test_bad_api_rules_are_refused_naming_the_field(gateway: Gateway) -> None:
    cases = [
        ({"cors": {"allow_origins": ["shop.example.com"]}}, "cors.allow_origins[0]"),
        ({"cors": {"allow_origins": ["*"], "allow_credentials": True}}, "cors.allow_credentials"),
        (
            {"cors": {"allow_origins": ["https://a.example"], "allow_methods": ["TRACE"]}},
            "cors.allow_methods[0]",
        ),
        ({"max_body_bytes": 0}, "max_body_bytes"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidParameter) as refused:
            await policy_manage.set_api_policy("orders", **kwargs)  # type: ignore[arg-type]
        assert refused.value.field == field


async def test_behind_a_trusted_proxy_the_forwarded_address_is_judged_as_the_proxy_wrote_it(
    gateway: Gateway, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    """Load balancers that add the port (`203.0.113.9:51234`) or write `unknown` must not let a caller's
    own, earlier entries in X-Forwarded-For decide."""
    consumer, key, _ = await application(apis=("stockouts",))
    await policy_manage.set_consumer_policy(consumer, ip_deny=["203.0.113.0/24", "2001:db8::/32"])
    _, env = store
    with gateway_processes(env, 1, tmp_path, UNIGATE_TRUSTED_PROXIES="127.0.0.1/32") as (url,):
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            # Not subscribed to orders: an address let through gets not_subscribed, no backend call.
            await settled(http, "GET", "/v1/orders", 403, params={"limit": 1})

            async def code_for(forwarded: str) -> str:
                answer = await http.get(
                    "/v1/orders", params={"limit": 1}, headers={"X-Forwarded-For": forwarded}
                )
                return str(answer.json()["code"])

            assert await code_for("203.0.113.9") == "ip_forbidden"
            assert await code_for("198.51.100.7, 203.0.113.9:51234") == "ip_forbidden"
            assert await code_for("198.51.100.7, [2001:db8::1]:443") == "ip_forbidden"
            assert await code_for("198.51.100.7, unknown") == "ip_forbidden"
            assert await code_for("203.0.113.9, 198.51.100.7") == "not_subscribed"  # the proxy saw .7
            assert await code_for("198.51.100.7:40000") == "not_subscribed"
