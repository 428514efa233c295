"""Where rate limits and quotas count: one interface, in-process (`limits` MemoryStorage) or Redis.

A request's limits are checked and consumed together, atomically: either every counter admits the
request and every counter takes it, or none does (so a refused request costs nothing anywhere). In
Redis that is one Lua script, one round trip, over `limits`' own Redis layout and algorithms (sliding
window counter, moving window) plus fixed counters per calendar period for quotas; the script reads
the clock of Redis, so every node counts in the same time. A counter is named by the subscription and
the window, not by the limit's size (see `rate_key`), so a changed limit applies to the calls made.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import hiredis
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from redis.exceptions import NoScriptError, RedisError

from policies.fallback import RedisFallback
from policies.redis_lane import Lane

log = logging.getLogger("unigate.limits")
Kind = Literal["sliding", "moving", "calendar"]
PREFIX = "LIMITS"  # limits' default key prefix, so its own tools read what we count
# A calendar counter outlives its period by at least this (node clocks differ a little) and at most twice
# this (policies.quota rebuilds a subscription's checks, and so their expiry, at least this often).
KEEP_AFTER_PERIOD = 3600


@dataclass(frozen=True, slots=True)
class Check:
    """One counter a request must fit in.

    Rate limits (`sliding`, `moving`) carry a `limits` item; a
    calendar quota is a plain counter under `key` that ends (and expires) at `period_end`.
    """

    kind: Kind
    limit: int
    key: str
    quota: bool
    label: str  # for messages: "100 calls per minute"
    item: RateLimitItem | None = None
    period_end: float = 0.0  # calendar: unix time the period ends
    expires_in: int = 0  # calendar: seconds to keep its counter (past the end: clocks differ a little)
    # calendar: what the period had already used by the metered usage (policies/quota_seed.py); a counter
    # that does not exist yet (Redis lost, a quota newly set, a node counting alone) starts there, not at 0
    seed: int = 0
    redis_keys: tuple[str, ...] = field(init=False)
    redis_args: tuple[str | int | float, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Built once per check (a plan's rate checks live as long as the config snapshot).
        if self.kind == "sliding":
            keys: tuple[str, ...] = (f"{PREFIX}:{{{self.key}}}/-1", f"{PREFIX}:{{{self.key}}}")
        else:
            keys = (f"{PREFIX}:{self.key}",)
        window = self.expires_in if self.kind == "calendar" else self.window
        object.__setattr__(self, "redis_keys", keys)
        object.__setattr__(self, "redis_args", (self.kind[0], self.limit, window, self.seed))

    @classmethod
    def rate(cls, item: RateLimitItem, identifiers: tuple[str, ...], *, exact: bool, label: str) -> Check:
        return cls(
            "moving" if exact else "sliding",
            item.amount,
            rate_key(item, identifiers),
            False,
            label,
            item=item,
        )

    @classmethod
    def calendar(
        cls, key: str, limit: int, period_end: float, label: str, now: float, seed: int = 0
    ) -> Check:
        """`now` sets how long its counter is kept: the period's rest and an hour (see KEEP_AFTER_PERIOD);
        `seed`, where an absent counter starts."""
        expires_in = max(1, int(period_end - now)) + KEEP_AFTER_PERIOD
        return cls(
            "calendar", limit, key, True, label, period_end=period_end, expires_in=expires_in, seed=seed
        )

    @property
    def window(self) -> int:
        return self.item.get_expiry() if self.item is not None else 0


def rate_key(item: RateLimitItem, identifiers: tuple[str, ...]) -> str:
    """`limits`' key for a rate limit (`LIMITER/42/orders/1/minute`) without the limit's size, which `limits`
    puts in it: a subscription's calls of the current window stay counted when its limit is lowered or
    raised (a plan change, an override), instead of a new size starting a fresh, empty window."""
    return "/".join((item.namespace, *identifiers, str(item.multiples), item.GRANULARITY.name))


@dataclass(frozen=True, slots=True)
class Count:
    """How a check stood for this request: `used` before it, and seconds until room returns."""

    check: Check
    used: int
    reset: float

    @property
    def refused(self) -> bool:
        return self.used + 1 > self.check.limit


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    counts: tuple[Count, ...]

    def remaining(self, count: Count) -> int:
        return max(0, count.check.limit - count.used - (1 if self.allowed else 0))


class Counters(Protocol):
    async def acquire(self, checks: Sequence[Check], now: float | None = None) -> Verdict:
        """Check every counter, then consume one unit from each if all admit; `now` only moves calendars."""
        ...


def _calendar_reset(check: Check, now: float | None) -> float:
    return max(0.0, check.period_end - (time.time() if now is None else now))


class MemoryCounters:
    """One process's counters in `limits`' MemoryStorage: right for one node with one worker.

    The storage's own window primitives (those `limits`' strategies use), under the checks' own keys.
    """

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        # The storage awaits between reading and writing; one lock makes check-then-consume atomic.
        self.lock = asyncio.Lock()

    async def acquire(self, checks: Sequence[Check], now: float | None = None) -> Verdict:
        async with self.lock:
            counts = tuple([await self._count(check, now) for check in checks])
            allowed = not any(count.refused for count in counts)
            if allowed:
                for check in checks:
                    if check.kind == "calendar":
                        await self.storage.incr(check.key, check.expires_in)
                    elif check.kind == "moving":
                        await self.storage.acquire_entry(check.key, check.limit, check.window)
                    else:
                        await self.storage.acquire_sliding_window_entry(check.key, check.limit, check.window)
        return Verdict(allowed, counts)

    async def _count(self, check: Check, now: float | None) -> Count:
        if check.kind == "calendar":
            used = await self.storage.get(check.key)
            if not used and check.seed > 0:
                # Absent (a calendar counter is never 0 once made): start it at what was already used.
                used = await self.storage.incr(check.key, check.expires_in, amount=check.seed)
            return Count(check, used, _calendar_reset(check, now))
        window = check.window
        if check.kind == "moving":
            # As limits' MovingWindowRateLimiter.get_window_stats: room returns when the oldest call leaves.
            oldest, used = await self.storage.get_moving_window(check.key, check.limit, window)
            reset = oldest + window - time.time() if used else 0.0
        else:
            # As limits' SlidingWindowCounterRateLimiter.get_window_stats.
            stats = await self.storage.get_sliding_window(check.key, window)
            previous, previous_ttl, current, current_ttl = stats
            used = math.floor(previous * previous_ttl / window + current)
            reset = min(
                previous_ttl % (window / previous) if previous else math.inf,
                current_ttl % window if current else math.inf,
            )
        # An empty window: this call opens it, and it closes a whole window later (as in Redis).
        return Count(check, used, reset if 0 < reset < math.inf else float(window))


# KEYS: per check, 2 keys for a sliding window (previous, current), else 1.
# ARGV: the number of checks, then per check: kind (s|m|c), limit, window seconds (c: seconds to keep it),
# seed (c: where an absent counter starts; set in this same script, so two nodes seeding at once add nothing).
# Returns {1 if admitted else 0, used_1, reset_ms_1, used_2, reset_ms_2, ...}; `used` is before this call.
ACQUIRE_LUA = """
local n = tonumber(ARGV[1])
local now_ms, stamp
local function clock()  -- Redis's clock, read only when a moving window needs it
  if not now_ms then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
    stamp = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  end
  return now_ms
end
local used, reset, fresh = {}, {}, {}
local admitted = true
local k, a = 1, 2
for i = 1, n do
  local kind, limit, window = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local seed = tonumber(ARGV[a + 3])
  a = a + 4
  if kind == 's' then
    -- limits' sliding window counter (acquire_sliding_window.lua), its reading part
    local prev, cur = KEYS[k], KEYS[k + 1]
    k = k + 2
    local expiry = window * 1000
    local cur_ttl = tonumber(redis.call('pttl', cur))
    local pc, pt, cc, ct
    if cur_ttl > 0 and cur_ttl < expiry then
      -- the current window has ended: it becomes the previous one
      pc, pt, cc, ct = tonumber(redis.call('get', cur)) or 0, cur_ttl, 0, cur_ttl + expiry
      redis.call('rename', cur, prev)
      redis.call('set', cur, 0, 'PX', ct)
    else
      cc, ct = 0, math.max(cur_ttl, 0)
      if cur_ttl ~= -2 then cc = tonumber(redis.call('get', cur)) or 0 end
      pc, pt = tonumber(redis.call('get', prev)) or 0, 0
      if pc > 0 then pt = math.max(tonumber(redis.call('pttl', prev)), 0) end
    end
    fresh[i] = cur_ttl == -2
    used[i] = math.floor(pc * pt / expiry) + cc
    local r = expiry
    if pc > 0 and pt > 0 then r = math.min(r, pt % (expiry / pc)) end
    if cc > 0 then r = math.min(r, ct % expiry) end
    reset[i] = r
  elseif kind == 'm' then
    -- limits' moving window: a list of timestamps, newest first, at most `limit` long
    local key = KEYS[k]
    k = k + 1
    local cutoff = (clock() - window * 1000) / 1000
    local low, high, found = 0, tonumber(redis.call('llen', key)) - 1, -1
    while low <= high do
      local mid = math.floor((low + high) / 2)
      if tonumber(redis.call('lindex', key, mid)) >= cutoff then
        found = mid
        low = mid + 1
      else
        high = mid - 1
      end
    end
    used[i] = found + 1
    if found >= 0 then
      reset[i] = math.max(0, tonumber(redis.call('lindex', key, found)) * 1000 + window * 1000 - now_ms)
    else
      reset[i] = window * 1000
    end
  else
    -- a calendar period: a plain counter whose key names the period; an absent one starts at the seed
    local count = redis.call('get', KEYS[k])
    if count then
      used[i] = tonumber(count)
    else
      used[i] = seed
      if seed > 0 then redis.call('set', KEYS[k], seed, 'EX', window) end
    end
    reset[i] = 0
    k = k + 1
  end
  if used[i] + 1 > limit then admitted = false end
end
if admitted then
  k, a = 1, 2
  for i = 1, n do
    local kind, limit, window = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    a = a + 4
    if kind == 's' then
      local cur = KEYS[k + 1]
      k = k + 2
      if fresh[i] then
        redis.call('set', cur, 1, 'PX', window * 2000)
      else
        redis.call('incrby', cur, 1)
      end
    elseif kind == 'm' then
      local key = KEYS[k]
      k = k + 1
      redis.call('lpush', key, stamp)
      redis.call('ltrim', key, 0, limit - 1)
      redis.call('expire', key, window)
    else
      local key = KEYS[k]
      k = k + 1
      if redis.call('incrby', key, 1) == 1 then redis.call('expire', key, window) end
    end
  end
end
local out = {admitted and 1 or 0}
for i = 1, n do
  out[#out + 1] = used[i]
  out[#out + 1] = math.floor(reset[i])
end
return out
"""


class RedisCounters:
    """Counters shared by every node through Redis: one EVALSHA per request, whatever the number of limits.

    The command for a set of checks is packed once and sent on a pipelined connection of its own
    (policies/redis_lane.py): redis-py's per-command path costs more CPU than the rest of the chain.
    Over TLS the counters use redis-py's `evalsha`.

    While Redis cannot be reached, each process counts alone (as without Redis) rather than failing
    every request: limits stay enforced per node, and cluster-wide again as soon as Redis answers.
    """

    # Packed commands remembered (one per plan and period in use); forgotten all at once beyond that.
    KEEP_COMMANDS = 4096

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.sha = hashlib.sha1(ACQUIRE_LUA.encode()).hexdigest()
        self.lane = Lane(redis) if Lane.supports(redis) else None
        self.fallback = MemoryCounters()
        self.redis_state = RedisFallback(
            log,
            "Redis unreachable: limits are counted per process until it answers",
            "Redis answers again: limits are counted cluster-wide",
        )
        # id(checks) -> (checks, command): a caller passing the same tuple again reuses its command.
        self._commands: dict[int, tuple[Sequence[Check], bytes]] = {}

    @property
    def degraded(self) -> bool:
        return self.redis_state.degraded

    def command(self, checks: Sequence[Check]) -> bytes:
        """The EVALSHA command for `checks`, packed once per checks object (a plan's tally is reused)."""
        cached = self._commands.get(id(checks))
        if cached is not None and cached[0] is checks:
            return cached[1]
        command: tuple[Any, ...] = ("EVALSHA", self.sha, *_keys_and_args(checks))
        packed: bytes = hiredis.pack_command(command)
        if len(self._commands) >= self.KEEP_COMMANDS:
            self._commands.clear()
        self._commands[id(checks)] = (checks, packed)  # holding `checks` keeps its id from being reused
        return packed

    async def acquire(self, checks: Sequence[Check], now: float | None = None) -> Verdict:
        if self.redis_state.away():
            return await self.fallback.acquire(checks, now)
        try:
            reply = await self._call(checks)
        except RedisError as error:
            self.redis_state.lost(error)
            return await self.fallback.acquire(checks, now)
        if self.redis_state.degraded:
            self.redis_state.found()
            # What this node counted alone is spent: a later outage starts again from the metered use,
            # not from these counts, which miss everything the cluster admitted meanwhile.
            self.fallback = MemoryCounters()
        counts = tuple(
            Count(
                check,
                int(reply[1 + 2 * i]),
                _calendar_reset(check, now) if check.kind == "calendar" else int(reply[2 + 2 * i]) / 1000,
            )
            for i, check in enumerate(checks)
        )
        return Verdict(bool(reply[0]), counts)

    async def _call(self, checks: Sequence[Check]) -> Any:
        """One round trip; the script is loaded (once per Redis server start) if Redis has not got it."""
        if self.lane is None:
            return await self.redis.evalsha(self.sha, *_keys_and_args(checks))
        command = self.command(checks)
        try:
            return await self.lane.call(command)
        except NoScriptError:
            await self.redis.script_load(ACQUIRE_LUA)
            return await self.lane.call(command)

    async def aclose(self) -> None:
        """Close the counters' own connection (the redis-py client is its owner's to close)."""
        if self.lane is not None:
            self.lane.close()


def _keys_and_args(checks: Sequence[Check]) -> list[str | int | float]:
    """EVALSHA's arguments after the sha: the number of keys, the keys, then ARGV."""
    keys: list[str] = []
    args: list[str | int | float] = [len(checks)]
    for check in checks:
        keys.extend(check.redis_keys)
        args.extend(check.redis_args)
    return [len(keys), *keys, *args]


def make_counters(redis: Any) -> Counters:
    """Redis when the node has it (cluster-wide counts), else this process's memory."""
    return RedisCounters(redis) if redis is not None else MemoryCounters()
