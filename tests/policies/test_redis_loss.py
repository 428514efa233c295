"""A node whose Redis cannot be reached keeps serving, as docs/policies.md promises: limits, backend caps
and the response cache fall back to the node itself instead of failing every call that uses them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from gateway import redis_client
from gateway.settings import Settings
from policies.backend import RedisCaps
from policies.cache import Entry, RedisStore
from policies.counters import Check, RedisCounters
from policies.fallback import PROBE_SECONDS
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
from tests.services import HOST, free_port, require_binary, run_process


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


async def test_what_a_node_counted_alone_is_dropped_when_redis_answers_again(tmp_path: Path) -> None:
    """A second outage starts the node's own counters from the metered use again, not from the counts of
    the first outage, which miss everything the cluster admitted in between."""
    port = free_port()
    command = [require_binary("redis-server", "redis-server"), "--port", str(port), "--bind", HOST,
               "--save", "", "--appendonly", "no"]  # fmt: skip
    settings = msgspec.structs.replace(Settings(), redis_url=f"redis://{HOST}:{port}/0")
    redis = redis_client.connect(settings)
    counters = RedisCounters(redis)
    now = time.time()
    check = Check.calendar("QUOTA/7/orders/day/today", 10, now + 3600, "10 calls a day", now, seed=4)
    try:
        # Redis away from the start: the node counts alone, from the seed.
        alone = [(await counters.acquire([check])).counts[0].used for _ in range(3)]
        assert alone == [4, 5, 6] and counters.degraded
        with run_process(command, log_path=tmp_path / "redis.log", ready_port=port):
            await asyncio.sleep(PROBE_SECONDS + 0.1)  # the next call asks Redis again
            assert (await counters.acquire([check])).counts[0].used == 4  # Redis's counter, seeded
            assert not counters.degraded
        again = (await counters.acquire([check])).counts[0].used  # away again: alone, from the seed
        assert counters.degraded and again == 4
    finally:
        await counters.aclose()
        await redis.aclose()
