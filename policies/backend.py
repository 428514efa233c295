"""Backend protection per connection: the options schema, the cluster-wide QPS and concurrency caps
(Redis, or in-process without it) and the circuit breaker that gateway/upstream.py applies to every call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol

import msgspec
from redis.exceptions import RedisError

from gateway import metrics
from gateway.errors import CircuitOpen, InvalidParameter, UpstreamBusy
from policies.fallback import RedisFallback

log = logging.getLogger("unigate.upstream")

# A call takes a few milliseconds, varying, to reach the backend after its slot: widening the cap's window
# by this much keeps a backend capped at N calls a second from ever seeing N + 1 in one of its seconds.
JITTER_MARGIN_SECONDS = 0.05
# How often a call waiting for a concurrency slot held on another node looks again.
SLOT_POLL_SECONDS = (0.005, 0.05)


class BreakerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Consecutive failures that open the breaker, how long it stays open, trial calls when half-open."""

    failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    open_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    half_open_calls: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1


class BackendOptions(msgspec.Struct, frozen=True):
    """The protection part of a connection's options; its other keys (shop, timezone) are the connector's.

    `qps` and `concurrency` are the backend's own limits, held across every gateway node; unset = none.
    `timeout_seconds` and `retries` default to UNIGATE_UPSTREAM_TIMEOUT and UNIGATE_UPSTREAM_RETRIES.
    """

    qps: Annotated[float, msgspec.Meta(gt=0, le=10_000)] | None = None
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=300)] | None = None
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None
    backoff_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    breaker: BreakerOptions = BreakerOptions()


_KINDS = (
    ("`float | null`", "a number"),
    ("`int | null`", "a whole number"),
    ("`float`", "a number"),
    ("`int`", "a whole number"),
    ("`object`", "an object"),
)
_AT = re.compile(r" - at `\$\.?(.*)`$")


def parse_options(options: Mapping[str, Any] | None) -> BackendOptions:
    """Validate a connection's options when they are set; InvalidParameter names the field (`options.qps`)."""
    try:
        return msgspec.convert(dict(options or {}), BackendOptions)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        path = at.group(1) if at else ""
        message = text[: at.start()] if at else text
        field = f"options.{path}" if path else "options"
        message = message[0].lower() + message[1:] if message else "invalid value"
        for kind, words in _KINDS:
            message = message.replace(f"expected {kind}", f"must be {words}")
        raise InvalidParameter(field, f"{field}: {message}") from None


# -- the caps: the same rules in-process and in Redis ---------------------------------------------


class Caps(Protocol):
    """Where the backends' caps are counted: one process (`LocalCaps`) or every node (`RedisCaps`)."""

    async def reserve_call(self, key: str, limit: int, window: float, max_wait: float) -> float:
        """Reserve a call slot; return the seconds to wait before calling, or -seconds if over `max_wait`."""
        ...

    async def try_slot(self, key: str, limit: int, holder: str, lease: float) -> bool: ...

    async def release_slot(self, key: str, holder: str) -> None: ...


def qps_window(qps: float) -> tuple[int, float]:
    """`qps` as at most `limit` calls in any `window` seconds: 5 -> (5, 1.05), 0.5 -> (1, 2.05)."""
    limit = max(1, int(qps)) if qps >= 1 else 1
    return limit, limit / qps + JITTER_MARGIN_SECONDS


class LocalCaps:
    """Caps for one node (no REDIS_URL)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._slots: dict[str, set[str]] = {}

    async def reserve_call(self, key: str, limit: int, window: float, max_wait: float) -> float:
        now = self.clock()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - window:
            calls.popleft()
        at = _slot_after(
            now, calls[-limit] if len(calls) >= limit else None, calls[-1] if calls else None, window
        )
        if at - now > max_wait:
            return -(at - now)
        calls.append(at)
        return at - now

    async def try_slot(self, key: str, limit: int, holder: str, lease: float) -> bool:
        holders = self._slots.setdefault(key, set())
        if len(holders) >= limit:
            return False
        holders.add(holder)
        return True

    async def release_slot(self, key: str, holder: str) -> None:
        self._slots.get(key, set()).discard(holder)


def _slot_after(now: float, kth_latest: float | None, latest: float | None, window: float) -> float:
    """When a call may go: a window after the limit-th latest reservation, never before the last."""
    at = now
    if kth_latest is not None:
        at = max(at, kth_latest + window)
    if latest is not None:
        at = max(at, latest)
    return at


# Reservations are kept in a sorted set scored by the time (ms, Redis's clock) each call may go. A call goes
# at least `window` after the one `limit` places before it, so no window of that length ever holds more.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local at = now
if n >= limit then
  local kth = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  at = math.max(at, tonumber(kth[2]) + window)
end
if n > 0 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  at = math.max(at, tonumber(last[2]))
end
if at - now > max_wait then return {0, at - now} end
redis.call('ZADD', KEYS[1], at, ARGV[4])
redis.call('PEXPIRE', KEYS[1], at - now + window + 1000)
return {1, at - now}
"""

# Concurrency slots are leases: a node that dies holding one frees it when the lease runs out.
_TRY_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
"""


class RedisCaps:
    """Caps held across every node sharing one Redis; Redis's clock orders the calls of all nodes.

    While Redis cannot be reached, each node holds the caps alone (`LocalCaps`), as the rate limits do,
    rather than failing every call to a capped backend; across the nodes again once Redis answers.
    """

    PREFIX = "unigate:backend:"

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._try_slot = redis.register_script(_TRY_SLOT)
        self.local = LocalCaps()
        self.redis_state = RedisFallback(
            log,
            "Redis unreachable: backend caps are held per node until it answers",
            "Redis answers again: backend caps are held across the nodes",
        )
        self._local_holders: set[str] = set()  # slots taken in this process while Redis was away

    async def reserve_call(self, key: str, limit: int, window: float, max_wait: float) -> float:
        if not self.redis_state.away():
            try:
                ok, wait_ms = await self._reserve(
                    keys=[f"{self.PREFIX}{key}:calls"],
                    args=[limit, round(window * 1000), round(max_wait * 1000), uuid.uuid4().hex],
                )
            except RedisError as error:
                self.redis_state.lost(error)
            else:
                self.redis_state.found()
                wait = int(wait_ms) / 1000
                return wait if int(ok) else -max(wait, 0.001)
        return await self.local.reserve_call(key, limit, window, max_wait)

    async def try_slot(self, key: str, limit: int, holder: str, lease: float) -> bool:
        if not self.redis_state.away():
            try:
                got = await self._try_slot(
                    keys=[f"{self.PREFIX}{key}:slots"], args=[limit, round(lease * 1000), holder]
                )
            except RedisError as error:
                self.redis_state.lost(error)
            else:
                self.redis_state.found()
                return bool(int(got))
        taken = await self.local.try_slot(key, limit, holder, lease)
        if taken:
            self._local_holders.add(holder)
        return taken

    async def release_slot(self, key: str, holder: str) -> None:
        if holder in self._local_holders:
            self._local_holders.discard(holder)
            await self.local.release_slot(key, holder)
            return
        if self.redis_state.away():
            return  # the slot is a lease: it frees itself when the lease runs out
        try:
            await self.redis.zrem(f"{self.PREFIX}{key}:slots", holder)
        except RedisError as error:
            self.redis_state.lost(error)  # the slot is a lease: it frees itself when the lease runs out
        else:
            self.redis_state.found()


@asynccontextmanager
async def capped(
    caps: Caps, key: str, options: BackendOptions, *, system: str, budget: float
) -> AsyncIterator[None]:
    """Hold a call within the backend's QPS and concurrency caps; UpstreamBusy if no room in `budget`."""
    deadline = time.monotonic() + budget
    holder = ""
    if options.concurrency is not None:
        holder = uuid.uuid4().hex
        pause = SLOT_POLL_SECONDS[0]
        # The lease outlives a call that hangs until its timeout, so a slot is never taken from a live call.
        while not await caps.try_slot(key, options.concurrency, holder, lease=budget + 5.0):
            if time.monotonic() + pause > deadline:
                raise UpstreamBusy(
                    f"{key} is at its cap of {options.concurrency} concurrent calls",
                    system=system,
                    retry_after=1.0,
                    connection=key,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, SLOT_POLL_SECONDS[1])
    try:
        if options.qps is not None:
            limit, window = qps_window(options.qps)
            wait = await caps.reserve_call(key, limit, window, max(0.0, deadline - time.monotonic()))
            if wait < 0:
                raise UpstreamBusy(
                    f"{key} is at its cap of {options.qps:g} calls a second",
                    system=system,
                    retry_after=-wait,
                    connection=key,
                )
            if wait > 0:
                await asyncio.sleep(wait)
        yield
    finally:
        if holder:
            await caps.release_slot(key, holder)


# -- the circuit breaker (per node: each node judges the backend by what it sees) ------------------


class Breaker:
    """closed -(N consecutive failures)-> open -(open_seconds)-> half_open -(trials succeed)-> closed;
    a failed trial opens it again. While open, calls fail at once with CircuitOpen (503)."""

    def __init__(
        self,
        connection: str,
        system: str,
        options: BreakerOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.system = system
        self.options = options
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.trials = 0  # trial calls in flight while half-open
        self.successes = 0
        metrics.breaker_changed(connection, self.state)

    def _set(self, state: str) -> None:
        self.state = state
        metrics.breaker_changed(self.connection, state)

    def current(self) -> str:
        if self.state == "open" and self.clock() - self.opened_at >= self.options.open_seconds:
            self._set("half_open")
            self.trials = self.successes = 0
        return self.state

    def enter(self) -> None:
        """Before a call: raise CircuitOpen if the backend must not be called now."""
        state = self.current()
        if state == "closed":
            return
        if state == "half_open" and self.trials < self.options.half_open_calls:
            self.trials += 1
            return
        wait = self.options.open_seconds - (self.clock() - self.opened_at) if state == "open" else 1.0
        raise CircuitOpen(
            f"{self.connection} is failing; calls are paused (circuit breaker {state.replace('_', '-')})",
            system=self.system,
            retry_after=max(wait, 1.0),
            connection=self.connection,
        )

    def success(self) -> None:
        if self.state == "half_open":
            self.trials = max(0, self.trials - 1)
            self.successes += 1
            if self.successes >= self.options.half_open_calls:
                self._set("closed")
        self.failures = 0

    def failure(self) -> None:
        if self.state == "half_open":
            self._open()
            return
        self.failures += 1
        if self.state == "closed" and self.failures >= self.options.failures:
            self._open()

    def abandon(self) -> None:
        """A call ended without telling us anything about the backend (cancelled, or refused by a cap)."""
        if self.state == "half_open":
            self.trials = max(0, self.trials - 1)

    def _open(self) -> None:
        self.opened_at = self.clock()
        self.failures = 0
        self._set("open")
