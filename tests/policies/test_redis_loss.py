"""A node whose Redis cannot be reached keeps serving, as docs/policies.md promises: limits, backend caps
and the response cache fall back to the node itself instead of failing every call that uses them."""

from __future__ import annotations

import contextlib
from pathlib import Path

from redis.asyncio import Redis

from policies.backend import RedisCaps
from policies.cache import Entry, RedisStore
from tests.conftest import Gateway
from tests.policies.backends import (
    RecordingBackend,
    add_connection,
    backends_fixture,  # noqa: F401 - the `backends` fixture
    clients,
    gateway_processes,
    wait_for_connection,
)
from tests.policies.p1_support import application
from tests.services import free_port


async def test_without_redis_cached_apis_and_capped_backends_still_answer(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[3]
    backend.reset()
    await add_connection(gateway, "capped-erp", backend.url, {"qps": 50, "concurrency": 2})
    _, key, _ = await application(
        {"rate_limits": {"per_minute": 3}}, apis=("stockouts",), grants=("capped-erp",)
    )
    _, env = store
    away = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "UNIGATE_CACHE_TTL": "stockouts=30"}
    with gateway_processes(env, 1, tmp_path, **away) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], key)
            await wait_for_connection(http, "capped-erp")
            backend.reset()
            answers = [
                await http.get("/v1/stockouts", params={"limit": 5}, headers={"X-Connection": "capped-erp"})
                for _ in range(3)
            ]
            ready = (await http.get("/readyz")).json()
    assert [a.status_code for a in answers] == [200, 200, 429], [a.text[:200] for a in answers]
    assert [a.headers.get("x-cache") for a in answers[:2]] == ["MISS", "MISS"]  # no cache, no failure
    assert answers[2].json()["code"] == "rate_limited"  # the node counts alone meanwhile
    assert len(backend.calls) == 2
    assert ready["status"] == "degraded"


async def test_a_cache_write_or_slot_release_that_reaches_redis_ends_the_fallback(redis_url: str) -> None:
    """While Redis is away one call a second asks it again. When that call is a cache write or a slot
    release and Redis answers, the part is back at once: not another second on the node's own state."""
    redis = Redis.from_url(redis_url)
    try:
        store, caps = RedisStore(redis), RedisCaps(redis)
        for state in (store.redis_state, caps.redis_state):
            state.lost(ConnectionError("gone"))
            state._next_probe = 0.0  # the second has passed: the next call asks Redis
        await store.put("probe", Entry(b"application/json", b"{}", 30.0))
        await caps.release_slot("probe", "holder")
        assert not store.redis_state.degraded and not caps.redis_state.degraded
    finally:
        await redis.aclose()
