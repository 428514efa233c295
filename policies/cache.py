"""Response cache for unified GETs: a TTL per API (UNIGATE_CACHE_TTL), in-process or in Redis, marked with
`X-Cache: HIT|MISS`. It runs after the connection check (policies/connection.py), so a revoked, closed or
deleted connection is refused, never replayed. The key holds the consumer, the resolved connection, the
path, the sorted query and whether the caller may read personal data, so one consumer never sees another's
answer; errors are never cached.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import msgspec
from cachetools import TLRUCache
from redis.exceptions import RedisError

from gateway import metrics
from policies import pii
from policies.chain import Context
from policies.fallback import RedisFallback

log = logging.getLogger("unigate.cache")


class Entry(msgspec.Struct, array_like=True, frozen=True):
    content_type: bytes
    body: bytes
    ttl: float


class CacheStore(Protocol):
    async def get(self, key: str) -> Entry | None: ...

    async def put(self, key: str, entry: Entry) -> None: ...


class LocalStore:
    """One process's cache (no REDIS_URL): least recently used entries go first when it is full."""

    def __init__(self, max_entries: int) -> None:
        self._entries: TLRUCache[str, Entry] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, now: now + entry.ttl, timer=time.monotonic
        )

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    async def put(self, key: str, entry: Entry) -> None:
        self._entries[key] = entry


class RedisStore:
    """The cache every node shares; Redis expires the entries.

    While Redis cannot be reached every lookup is a miss and nothing is kept: the answers come from the
    backends, as with the cache off, instead of every cached API failing with the cache.
    """

    PREFIX = "unigate:cache:"

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.redis_state = RedisFallback(
            log,
            "Redis unreachable: the response cache is bypassed until it answers",
            "Redis answers again: the response cache is back",
        )

    async def get(self, key: str) -> Entry | None:
        if self.redis_state.away():
            return None
        try:
            raw = await self.redis.get(self.PREFIX + key)
        except RedisError as error:
            self.redis_state.lost(error)
            return None
        self.redis_state.found()
        return msgspec.msgpack.decode(raw, type=Entry) if raw else None

    async def put(self, key: str, entry: Entry) -> None:
        if self.redis_state.away():
            return
        try:
            await self.redis.set(
                self.PREFIX + key, msgspec.msgpack.encode(entry), px=max(1, round(entry.ttl * 1000))
            )
        except RedisError as error:
            self.redis_state.lost(error)
        else:
            self.redis_state.found()


def cache_key(ctx: Context) -> str:
    """Everything that makes two answers differ, hashed: who asks, from which backend, for what."""
    consumer = ctx.consumer.id if ctx.consumer else 0
    # The connections policies/connection.py resolved and checked, not the raw headers: the key names
    # the backend the answer came from.
    connection, tracking = ctx.connection, ctx.tracking
    query = urlencode(sorted(parse_qsl(ctx.scope.get("query_string", b"").decode("latin-1"), True)))
    parts = (
        str(consumer),
        connection.name if connection else "",
        tracking.name if tracking else "",
        ctx.path,
        query,
        "pii" if pii.may_read(ctx.granted_scopes) else "masked",
    )
    return f"{ctx.api}:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()}"


class Cache:
    """Policy: answer a unified GET from the cache when a fresh copy is there; keep 200 answers."""

    def __init__(self, store: CacheStore, ttl: dict[str, float]) -> None:
        self.store = store
        self.ttl = {api: seconds for api, seconds in ttl.items() if seconds > 0}
        # With no API cached, the chain leaves this policy out (policies.chain.compose).
        self.inert = not self.ttl

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None:
        ttl = self.ttl.get(ctx.api or "")
        if ttl is None or ctx.method != "GET":
            await call_next(ctx)
            return
        key = cache_key(ctx)
        # `Cache-Control: no-cache` asks for a fresh answer, which then refreshes the cache.
        fresh = "no-cache" in ctx.headers.get("cache-control", "")
        entry = None if fresh else await self.store.get(key)
        if entry is not None:
            metrics.child(metrics.CACHE_LOOKUPS, ctx.api or "", "hit").inc()
            await self._replay(ctx, entry)
            return
        metrics.child(metrics.CACHE_LOOKUPS, ctx.api or "", "miss").inc()
        ctx.response_headers.append((b"x-cache", b"MISS"))
        started: dict[str, Any] = {}
        chunks: list[bytes] = []
        send = ctx.send

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        ctx.send = keep
        await call_next(ctx)
        if started.get("status") == 200:
            content_type = dict(started.get("headers", [])).get(b"content-type", b"application/json")
            await self.store.put(key, Entry(content_type, b"".join(chunks), ttl))

    @staticmethod
    async def _replay(ctx: Context, entry: Entry) -> None:
        ctx.response_headers.append((b"x-cache", b"HIT"))
        headers = [(b"content-type", entry.content_type), (b"content-length", str(len(entry.body)).encode())]
        await ctx.send({"type": "http.response.start", "status": 200, "headers": headers})
        await ctx.send({"type": "http.response.body", "body": entry.body})
