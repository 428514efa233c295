"""A Redis that hangs (`kill -STOP`: a frozen host, a partition) is treated as one that refuses: every call is
bounded by UNIGATE_REDIS_TIMEOUT, limits count per node meanwhile, and all comes back when Redis does."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import hiredis
import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.settings import Settings
from gateway.store import manage
from policies.backend import RedisCaps
from policies.redis_lane import Lane
from tests.conftest import Gateway, unigate
from tests.policies.p1_support import application, until
from tests.services import free_port, frozen, log_entries, own_redis, run_process, said

TIMEOUT = 0.25  # UNIGATE_REDIS_TIMEOUT of the nodes under test


def client(url: str) -> Redis:
    """The client as gateway/app.py makes it."""
    return Redis.from_url(
        url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
    )


async def test_a_connection_that_timed_out_never_hands_its_late_reply_to_the_next_call(
    tmp_path: Path,
) -> None:
    """redis-py's pool and the counters' own lane (policies/redis_lane.py) both drop a connection whose
    call timed out: once Redis wakes, its late answer to `GET a` must not become the answer to `GET b`."""
    with own_redis(tmp_path) as (url, pid):
        redis = client(url)
        lane = Lane(redis)
        try:
            await redis.mset({"a": "A", "b": "B"})
            assert await lane.call(hiredis.pack_command(("GET", "b"))) == b"B"  # the lane is open
            with frozen(pid):
                with pytest.raises(RedisTimeoutError):
                    await redis.get("a")
                with pytest.raises(RedisTimeoutError):
                    await lane.call(hiredis.pack_command(("GET", "a")))
            # Redis now answers the `GET a`s it had queued; neither client may read those answers.
            assert [await redis.get("b") for _ in range(3)] == [b"B", b"B", b"B"]
            assert [await lane.call(hiredis.pack_command(("GET", "b"))) for _ in range(3)] == [b"B"] * 3
        finally:
            lane.close()
            await redis.aclose()


async def test_backend_caps_hold_per_node_while_redis_is_frozen(tmp_path: Path) -> None:
    """A backend's concurrency and QPS caps are held by the node alone while Redis hangs, not skipped."""
    with own_redis(tmp_path) as (url, pid):
        redis = client(url)
        caps = RedisCaps(redis)
        try:
            await caps.try_slot("erp", 1, "before", lease=30)  # taken in Redis; Redis keeps it while frozen
            with frozen(pid):
                slots = [await caps.try_slot("erp", 1, holder, lease=30) for holder in ("a", "b")]
                await caps.release_slot("erp", "a")
                freed = await caps.try_slot("erp", 1, "c", lease=30)
                calls = [await caps.reserve_call("erp", 2, 1.0, max_wait=0.0) for _ in range(3)]
        finally:
            await redis.aclose()
    assert slots == [True, False]  # one call at a time, counted on the node
    assert freed  # a slot the node gave is the node's to take back
    assert calls[:2] == [0.0, 0.0] and calls[2] < 0  # 2 calls a second: the third would have to wait


async def timed_get(http: httpx.AsyncClient, url: str, key: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await http.get(
        f"{url}/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {key}"}
    )
    return response, time.perf_counter() - started


async def test_a_frozen_redis_costs_a_timeout_not_a_hang_and_all_comes_back_when_it_wakes(
    gateway: Gateway,  # the connections to the simulators exist
    store: tuple[Settings, dict[str, str]],
    tmp_path: Path,
) -> None:
    _, env = store
    _, per_node_key, _ = await application({"rate_limits": {"per_minute": 5}}, apis=("stockouts",))
    _, shared_key, _ = await application({"rate_limits": {"per_minute": 10}}, apis=("stockouts",))
    _, timing_key, _ = await application({"rate_limits": {"per_minute": 1000}}, apis=("stockouts",))
    frozen_revoked, frozen_revoked_key, _ = await application(apis=("stockouts",))
    later_revoked, later_revoked_key, _ = await application(apis=("stockouts",))
    async with AsyncExitStack() as stack:
        url, pid = stack.enter_context(own_redis(tmp_path))
        nodes, logs = [], []
        # Node A polls the config every second (the fallback while Redis is away); node B only every 30 s,
        # so only an announcement over Redis can bring it a change in time.
        for name, poll in (("a", "1"), ("b", "30")):
            port = free_port()
            logs.append(tmp_path / f"node-{name}.log")
            stack.enter_context(
                run_process(
                    [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                    env={
                        **env,
                        "REDIS_URL": url,
                        "UNIGATE_REDIS_TIMEOUT": str(TIMEOUT),
                        "UNIGATE_CONFIG_POLL_SECONDS": poll,
                        "UNIGATE_LOG_LEVEL": "INFO",
                        "UNIGATE_CACHE_TTL": "stockouts=30",
                    },
                    log_path=logs[-1],
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                )
            )
            nodes.append(f"http://127.0.0.1:{port}")
        node_a, node_b = nodes
        # A hang would show as this client's timeout, far beyond UNIGATE_REDIS_TIMEOUT.
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))

        healthy = [await timed_get(http, node_a, timing_key) for _ in range(10)]
        assert [r.status_code for r, _ in healthy] == [200] * 10
        assert [(await http.get(f"{n}/readyz")).json()["status"] for n in nodes] == ["ready", "ready"]

        with frozen(pid):
            stalled = [await timed_get(http, node_a, timing_key) for _ in range(10)]
            per_node = await asyncio.gather(*(_seven(http, node, per_node_key) for node in nodes))
            ready = [await http.get(f"{n}/readyz") for n in nodes]
            # A change made meanwhile reaches node A by its poll; Redis cannot carry the announcement.
            key_id = next(row["id"] for row in await manage.list_keys(frozen_revoked))
            await manage.revoke_key(key_id)
            await until(
                lambda: _status(http, node_a, frozen_revoked_key, 401), within=10, what="the revocation"
            )
            # Node B's listener notices the silence by its PING, not by waiting for ever.
            await until(
                lambda: _true(said(logs[1], "config announcements lost")), within=10, what="the lost listener"
            )

        assert [r.status_code for r, _ in stalled] == [200] * 10, [r.text[:200] for r, _ in stalled]
        assert all(r.headers["ratelimit-limit"] == "1000" for r, _ in stalled)
        assert {r.headers["x-cache"] for r, _ in stalled} == {"MISS"}  # the cache is bypassed, not failing
        for answers in per_node:  # the limit holds per node while Redis cannot count for both
            answered = [r for r, _ in answers]
            assert [r.status_code for r in answered] == [200] * 5 + [429] * 2, [
                r.text[:200] for r in answered
            ]
            assert [r.headers["ratelimit-remaining"] for r in answered] == ["4", "3", "2", "1", "0", "0", "0"]
            assert answered[-1].json()["code"] == "rate_limited"
        assert [r.status_code for r in ready] == [200, 200]
        assert [r.json()["status"] for r in ready] == ["degraded", "degraded"]
        assert ready[0].json()["checks"]["redis"] == "error: TimeoutError"

        # Redis is back: both nodes count in it again, so one limit of 10 holds for the two together, and
        # every answer's remaining count is its own (a late reply read by the next call would repeat one).
        async def both_ready() -> bool:
            return [(await http.get(f"{n}/readyz")).json()["status"] for n in nodes] == ["ready", "ready"]

        await until(both_ready, within=5, what="readiness after Redis returned")

        async def counting_in_redis_again() -> bool:
            # While Redis was away each node asks it again once a second, on a call: calls go on meanwhile.
            for node in nodes:
                assert (await timed_get(http, node, timing_key))[0].status_code == 200
            back = ("limits are counted cluster-wide", "the response cache is back")
            return all(said(log, f"Redis answers again: {part}") for log in logs for part in back)

        await until(counting_in_redis_again, within=5, what="counting in Redis after it returned")
        shared = [(await timed_get(http, nodes[i % 2], shared_key))[0] for i in range(16)]
        assert [r.status_code for r in shared].count(200) == 10, [r.text[:200] for r in shared]
        admitted = [r for r in shared if r.status_code == 200]
        assert sorted(int(r.headers["ratelimit-remaining"]) for r in admitted) == list(range(10))
        assert {r.status_code for r in shared[10:]} == {429}

        # `unigate keys revoke`, a process of its own, announces over Redis; node B (30 s poll) hears it.
        later_id = next(row["id"] for row in await manage.list_keys(later_revoked))
        unigate({**env, "REDIS_URL": url}, "keys", "revoke", str(later_id))
        await until(lambda: _status(http, node_b, later_revoked_key, 401), within=10, what="the announcement")

        healthy_again = [await timed_get(http, node_a, timing_key) for _ in range(10)]

    for log in logs:
        entries = log_entries(log)
        assert not [e for e in entries if "exception" in e or "Traceback" in str(e)], log.read_text()[-3000:]
    for log in logs:  # each part said once that it fell back, and once that it came back
        for part in ("limits are counted per process", "the response cache is bypassed"):
            lost = said(log, f"Redis unreachable: {part}")
            assert len(lost) == 1 and "TimeoutError" in lost[0]["message"], (log, part)
        assert len(said(log, "Redis answers again: limits are counted cluster-wide")) == 1
        assert len(said(log, "Redis answers again: the response cache is back")) == 1
    listening = [
        i for i, e in enumerate(log_entries(logs[1])) if "listening for config" in e.get("message", "")
    ]
    assert len(listening) >= 2  # subscribed at start, and again after Redis returned
    figures = {
        "healthy": statistics.median(t for _, t in healthy),
        "frozen": statistics.median(t for _, t in stalled),
        "frozen max (a call that asked Redis)": max(t for _, t in stalled),
        "healthy again": statistics.median(t for _, t in healthy_again),
    }
    print(f"\n/v1/stockouts latency with UNIGATE_REDIS_TIMEOUT={TIMEOUT}: " + ", ".join(
        f"{name} {seconds * 1000:.1f} ms" for name, seconds in figures.items()
    ))  # fmt: skip


async def _status(http: httpx.AsyncClient, url: str, key: str, status: int) -> bool:
    response = await http.get(
        f"{url}/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {key}"}
    )
    return response.status_code == status


async def _true(value: object) -> bool:
    return bool(value)


async def _seven(http: httpx.AsyncClient, url: str, key: str) -> list[tuple[httpx.Response, float]]:
    return [await timed_get(http, url, key) for _ in range(7)]
