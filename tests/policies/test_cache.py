"""The unified GET response cache (policies/cache.py): X-Cache, keyed per consumer and query, errors never
kept, in-process on one node and shared through Redis by two."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import httpx
import msgspec
from redis.asyncio import Redis

from gateway.store import manage
from policies.cache import RedisStore
from tests.conftest import Gateway
from tests.policies.backends import (
    RecordingBackend,
    add_connection,
    backends_fixture,  # noqa: F401 - the `backends` fixture
    clients,
    gateway_processes,
    wait_for_connection,
)
from tests.policies.p1_support import application, until

CACHED = {"UNIGATE_CACHE_TTL": "stockouts=30"}
SIGN_ERROR = msgspec.json.encode({"code": 1100, "message": "签名错误"})


async def test_a_repeated_get_is_answered_from_the_cache_of_its_own_consumer_only(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[1]
    backend.reset()
    await add_connection(gateway, "cached-erp", backend.url, {})
    _, other_key, _ = await application(grants=("cached-erp",))
    _, env = store
    headers = {"X-Connection": "cached-erp"}
    with gateway_processes(env, 1, tmp_path, **CACHED) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (mine,) = await clients(stack, [url], gateway.key)
            (other,) = await clients(stack, [url], other_key)
            await wait_for_connection(mine, "cached-erp")
            backend.calls.clear()

            first = await mine.get("/v1/stockouts", params={"limit": 5, "shop": "s1"}, headers=headers)
            again = await mine.get("/v1/stockouts", params={"shop": "s1", "limit": 5}, headers=headers)
            assert (first.status_code, first.headers["x-cache"]) == (200, "MISS")
            assert (again.status_code, again.headers["x-cache"]) == (200, "HIT")
            assert again.json() == first.json()
            assert again.headers["x-request-id"] != first.headers["x-request-id"]
            assert len(backend.calls) == 1

            # Another query, another consumer, or a caller asking for a fresh answer: the backend is asked.
            assert (await mine.get("/v1/stockouts", params={"limit": 4}, headers=headers)).headers[
                "x-cache"
            ] == "MISS"
            theirs = await other.get("/v1/stockouts", params={"limit": 5, "shop": "s1"}, headers=headers)
            assert theirs.headers["x-cache"] == "MISS"
            no_cache = {**headers, "Cache-Control": "no-cache"}
            fresh = await mine.get("/v1/stockouts", params={"limit": 5, "shop": "s1"}, headers=no_cache)
            assert fresh.headers["x-cache"] == "MISS"
            assert len(backend.calls) == 4

            # Errors are never kept.
            backend.calls.clear()
            backend.script.extend([(200, {}, SIGN_ERROR), (200, {}, SIGN_ERROR)])
            for _ in range(2):
                refused = await mine.get("/v1/stockouts", params={"limit": 3}, headers=headers)
                assert (refused.status_code, refused.headers["x-cache"]) == (502, "MISS")
            assert len(backend.calls) == 2
            assert (await mine.get("/v1/stockouts", params={"limit": 3}, headers=headers)).status_code == 200


async def test_two_nodes_share_the_cache_through_redis(
    gateway: Gateway,
    store: tuple[object, dict[str, str]],
    redis_url: str,
    backends: list[RecordingBackend],
    tmp_path: Path,
) -> None:
    backend = backends[1]
    backend.reset()
    await add_connection(gateway, "cached-erp", backend.url, {})
    _, env = store
    headers = {"X-Connection": "cached-erp"}
    with gateway_processes(env, 2, tmp_path, REDIS_URL=redis_url, **CACHED) as urls:
        async with contextlib.AsyncExitStack() as stack:
            one, two = await clients(stack, urls, gateway.key)
            for node in (one, two):
                await wait_for_connection(node, "cached-erp")
            backend.calls.clear()
            redis = Redis.from_url(redis_url)
            stack.push_async_callback(redis.aclose)
            before = set(await redis.keys(f"{RedisStore.PREFIX}*"))
            first = await one.get("/v1/stockouts", params={"limit": 2}, headers=headers)

            async def stored() -> bool:  # the entry is written just after the answer goes out
                return bool(set(await redis.keys(f"{RedisStore.PREFIX}*")) - before)

            await until(stored, what="node one's cache entry")
            second = await two.get("/v1/stockouts", params={"limit": 2}, headers=headers)
    seen = [(r.status_code, r.headers.get("x-cache"), r.text[:200]) for r in (first, second)]
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT"), seen
    assert second.json() == first.json()
    assert len(backend.calls) == 1


async def test_a_revoked_closed_or_deleted_connection_is_refused_not_answered_from_the_cache(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[1]
    suffix = uuid.uuid4().hex[:8]
    revoked, closed, deleted = (f"cache-{kind}-{suffix}" for kind in ("revoked", "closed", "deleted"))
    for name in (revoked, closed, deleted):
        await add_connection(gateway, name, backend.url, {})
    await manage.set_connection_open(closed, True)
    consumer, key, _ = await application(grants=(revoked, deleted))
    _, env = store
    with gateway_processes(env, 1, tmp_path, **CACHED) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], key)

            async def read(name: str) -> httpx.Response:
                return await http.get("/v1/stockouts", params={"limit": 1}, headers={"X-Connection": name})

            for name in (revoked, closed, deleted):
                await wait_for_connection(http, name)
                first, again = await read(name), await read(name)
                assert (first.status_code, again.status_code, again.headers["x-cache"]) == (200, 200, "HIT")

            await manage.revoke_connections(consumer, [revoked])
            await manage.set_connection_open(closed, False)
            await manage.delete_connection(deleted)
            for name in (revoked, closed, deleted):

                async def refused(name: str = name) -> bool:
                    return (await read(name)).status_code == 403

                # A cached answer would be replayed (200, X-Cache: HIT) for the entry's 30 s.
                await until(refused, within=10, what=f"the end of {name}")
                problem = (await read(name)).json()
                assert (problem["code"], problem["field"]) == ("connection_not_granted", "X-Connection")
