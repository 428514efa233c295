"""The work queue between a run's source pull and the workers: batches of records, by priority.

Redis Streams with one consumer group per priority stream, so several worker processes share the work
and a batch a killed worker held is claimed again once it has sat idle; each run's pull position is
written in the same transaction as its batches, so a pull taken over resumes where it stopped. Without
Redis, `MemoryQueue` does the same inside one process.

While Redis is unreachable (refusing, or frozen: every call is bounded by the client's timeout, see
gateway/redis_client.py) every call fails at once with one of `UNREACHABLE`: the caller knows whether to try
again, and meanwhile notices a stop or a lost lease; the queue says once that Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.schemes.model import PRIORITIES
from policies.fallback import RedisFallback

log = logging.getLogger("unigate.schemes")
T = TypeVar("T")

PREFIX = "unigate:schemes"
GROUP = "workers"
# The longest a `take` waits inside Redis for a batch (XREADGROUP BLOCK): the queue's client must allow
# this on top of UNIGATE_REDIS_TIMEOUT before it calls a read a hang.
TAKE_WAIT_SECONDS = 0.5
# Redis refusing, dropping the connection, or not answering within the client's timeout.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# A caller waiting for Redis asks again after this, doubling up to the longest.
RETRY_SECONDS, LONGEST_RETRY_SECONDS = 0.1, 2.0
# One script, so the bound holds across every worker and the pull position moves with its batches.
# ARGV[6] names this put, and every put carried out is remembered (KEYS[6], deleted with the run's state): a
# put tried again after a timeout that Redis had in fact carried out (it runs what it read once it wakes),
# or a copy of an older put arriving late, after newer ones, is not done again. A put turned away by the
# bound is not remembered, so it may be tried again.
_PUT = """
if redis.call('SISMEMBER', KEYS[6], ARGV[6]) == 1 then return 1 end
local n = #ARGV - 6
if n > 0 and tonumber(ARGV[1]) >= 0 then
  local depth = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2]) + redis.call('XLEN', KEYS[3])
  if depth > 0 and depth + n > tonumber(ARGV[1]) then return 0 end
end
redis.call('SADD', KEYS[6], ARGV[6])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[5], '*', 'run', ARGV[2], 'body', ARGV[i])
end
redis.call('HINCRBY', KEYS[4], 'enqueued', n)
redis.call('HINCRBY', KEYS[4], 'pulled', ARGV[5])
redis.call('HSET', KEYS[4], 'cursor', ARGV[3], 'pull_done', ARGV[4])
return 1
"""
_ACK = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], 'done', 1)
  return 1
end
return 0
"""


class Stopped(Exception):
    """A wait for Redis ended by a stop (see until_answered)."""


async def pause(seconds: float, stop: asyncio.Event) -> None:
    """Sleep, but not past a stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def until_answered(call: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T:
    """`call` (one queue call) until Redis answers it, asking again less often the longer it is away (the
    queue says once that it is away); raises Stopped when Redis is away and `stop` is set."""
    delay = RETRY_SECONDS
    while True:
        try:
            return await call()
        except UNREACHABLE:
            if stop.is_set():
                raise Stopped() from None
            await pause(delay, stop)
            delay = min(delay * 2, LONGEST_RETRY_SECONDS)


class Progress(msgspec.Struct, frozen=True):
    """A run's pull position and how many of its batches were enqueued and finished."""

    enqueued: int = 0
    done: int = 0
    cursor: str | None = None
    pull_done: bool = False
    pulled: int = 0  # records read from the source


class Claimed(msgspec.Struct, frozen=True):
    """A batch a consumer holds until it acknowledges it."""

    run: int
    body: bytes
    priority: str
    entry: str


class WorkQueue(Protocol):
    async def put(
        self,
        run: int,
        priority: str,
        bodies: list[bytes],
        *,
        cursor: str | None,
        pull_done: bool,
        pulled: int,
        name: str,
        bound: int | None = None,
    ) -> bool:
        """Enqueue batches and record the pull position, all or nothing; False (nothing done) when the
        batches would take the queue above `bound` (an empty queue takes any one page). `name` is the same
        in every try of one put: a put of a name carried out already is not done again (True)."""
        ...

    async def progress(self, run: int) -> Progress: ...

    async def take(self, consumer: str, wait_seconds: float) -> Claimed | None: ...

    async def keep(self, consumer: str, claimed: Claimed) -> None: ...

    async def ack(self, claimed: Claimed) -> None: ...

    async def depth(self) -> int: ...

    async def forget(self, run: int) -> None: ...


class MemoryQueue:
    """One process's queue (no Redis): the same contract, nothing shared, nothing survives the process."""

    def __init__(self) -> None:
        self._items: dict[str, deque[Claimed]] = {p: deque() for p in PRIORITIES}
        self._held: set[str] = set()
        self._runs: dict[int, Progress] = {}
        self._puts: dict[int, set[str]] = {}  # the names of each run's puts carried out
        self._changed = asyncio.Event()
        self._seq = 0

    async def put(
        self,
        run: int,
        priority: str,
        bodies: list[bytes],
        *,
        cursor: str | None,
        pull_done: bool,
        pulled: int,
        name: str,
        bound: int | None = None,
    ) -> bool:
        puts = self._puts.setdefault(run, set())
        if name in puts:
            return True
        depth = await self.depth()
        if bound is not None and bodies and depth and depth + len(bodies) > bound:
            return False
        puts.add(name)
        for body in bodies:
            self._seq += 1
            self._items[priority].append(Claimed(run, body, priority, str(self._seq)))
        old = self._runs.get(run, Progress())
        self._runs[run] = Progress(
            old.enqueued + len(bodies), old.done, cursor, pull_done, old.pulled + pulled
        )
        self._changed.set()
        return True

    async def progress(self, run: int) -> Progress:
        return self._runs.get(run, Progress())

    async def take(self, consumer: str, wait_seconds: float) -> Claimed | None:
        deadline = time.monotonic() + wait_seconds
        while True:
            for priority in PRIORITIES:
                if self._items[priority]:
                    claimed = self._items[priority].popleft()
                    self._held.add(claimed.entry)
                    return claimed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None

    async def keep(self, consumer: str, claimed: Claimed) -> None:
        return None

    async def ack(self, claimed: Claimed) -> None:
        if claimed.entry in self._held:
            self._held.discard(claimed.entry)
            old = self._runs.get(claimed.run, Progress())
            self._runs[claimed.run] = msgspec.structs.replace(old, done=old.done + 1)

    async def depth(self) -> int:
        return sum(len(items) for items in self._items.values()) + len(self._held)

    async def forget(self, run: int) -> None:
        self._runs.pop(run, None)
        self._puts.pop(run, None)


class RedisQueue:
    """Redis Streams: `unigate:schemes:q:<priority>`, group `workers`; run state in `...:run:<id>`, the
    names of its puts carried out in `...:run:<id>:puts`."""

    def __init__(self, redis: Redis, *, claim_idle_seconds: float = 30.0) -> None:
        self.redis = redis
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._ready = False
        self._last_reclaim = 0.0
        self._waiting: deque[Claimed] = deque()
        self.redis_state = RedisFallback(
            log,
            "Redis unreachable: the scheme queue waits for it",
            "Redis answers again: the scheme queue goes on",
        )

    @staticmethod
    def stream(priority: str) -> str:
        return f"{PREFIX}:q:{priority}"

    @staticmethod
    def run_key(run: int) -> str:
        return f"{PREFIX}:run:{run}"

    @staticmethod
    def puts_key(run: int) -> str:
        """The names of the run's puts carried out (see _PUT)."""
        return f"{PREFIX}:run:{run}:puts"

    async def _once(self, call: Callable[[], Awaitable[T]]) -> T:
        """One try, as every call here; a Redis away is said once (not per call), and so is its return."""
        try:
            result = await call()
        except UNREACHABLE as error:
            self.redis_state.lost(error)
            raise
        self.redis_state.found()
        return result

    async def _ensure(self) -> None:
        if self._ready:
            return
        for priority in PRIORITIES:
            try:
                await self.redis.xgroup_create(self.stream(priority), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    async def put(
        self,
        run: int,
        priority: str,
        bodies: list[bytes],
        *,
        cursor: str | None,
        pull_done: bool,
        pulled: int,
        name: str,
        bound: int | None = None,
    ) -> bool:
        keys = [
            *(self.stream(p) for p in PRIORITIES),
            self.run_key(run),
            self.stream(priority),
            self.puts_key(run),
        ]
        flag = "1" if pull_done else "0"
        args: list[Any] = [-1 if bound is None else bound, run, cursor or "", flag, pulled, name]
        args.extend(bodies)

        async def put() -> bool:
            await self._ensure()
            return bool(await self.redis.eval(_PUT, len(keys), *keys, *args))  # type: ignore[misc]

        return await self._once(put)

    async def progress(self, run: int) -> Progress:
        raw = await self._once(lambda: self.redis.hgetall(self.run_key(run)))
        state = {_text(k): _text(v) for k, v in raw.items()}
        return Progress(
            enqueued=int(state.get("enqueued", 0)),
            done=int(state.get("done", 0)),
            cursor=state.get("cursor") or None,
            pull_done=state.get("pull_done") == "1",
            pulled=int(state.get("pulled", 0)),
        )

    async def take(self, consumer: str, wait_seconds: float) -> Claimed | None:
        """The next batch for `consumer`, waiting up to `wait_seconds` (at most TAKE_WAIT_SECONDS) for one.

        One try: a read Redis carries out after it timed out here hands its entry to `consumer` unseen; the
        entry stays pending and is claimed again (`_reclaim`) once idle, so nothing is lost."""
        return await self._once(lambda: self._take(consumer, min(wait_seconds, TAKE_WAIT_SECONDS)))

    async def _take(self, consumer: str, wait_seconds: float) -> Claimed | None:
        await self._ensure()
        if self._waiting:
            return self._waiting.popleft()
        now = time.monotonic()
        if now - self._last_reclaim > self.claim_idle_ms / 4000:
            self._last_reclaim = now
            if claimed := await self._reclaim(consumer):
                return claimed
        # Highest priority first: ask each stream without blocking, in order.
        for priority in PRIORITIES:
            answer = await self.redis.xreadgroup(
                GROUP,
                consumer,
                {self.stream(priority): ">"},  # type: ignore[dict-item]
                count=1,
            )
            if found := self._entries(answer):
                return found[0]
        if wait_seconds <= 0:
            return None
        streams: dict[Any, Any] = {self.stream(priority): ">" for priority in PRIORITIES}
        answer = await self.redis.xreadgroup(
            GROUP, consumer, streams, count=1, block=int(wait_seconds * 1000)
        )
        found = sorted(self._entries(answer), key=lambda c: PRIORITIES.index(c.priority))
        if not found:
            return None
        # A blocking read may hand over one entry per stream: keep the rest, they are ours now.
        self._waiting.extend(found[1:])
        return found[0]

    async def _reclaim(self, consumer: str) -> Claimed | None:
        """A batch some consumer took and left idle too long (it was killed): take it over."""
        for priority in PRIORITIES:
            answer = await self.redis.xautoclaim(
                self.stream(priority),
                GROUP,
                consumer,
                min_idle_time=self.claim_idle_ms,
                start_id="0-0",
                count=1,
            )
            entries = answer[1] if len(answer) > 1 else []
            claimed = [self._claimed(priority, entry_id, fields) for entry_id, fields in entries if fields]
            if claimed:
                return claimed[0]
        return None

    def _entries(self, answer: object) -> list[Claimed]:
        found: list[Claimed] = []
        for stream, entries in answer or []:  # type: ignore[attr-defined]
            name = stream.decode() if isinstance(stream, bytes) else str(stream)
            priority = name.rsplit(":", 1)[1]
            found.extend(self._claimed(priority, entry_id, fields) for entry_id, fields in entries)
        return found

    @staticmethod
    def _claimed(priority: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Claimed:
        entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return Claimed(run=int(fields[b"run"]), body=fields[b"body"], priority=priority, entry=entry)

    async def keep(self, consumer: str, claimed: Claimed) -> None:
        """Tell the group this batch is still being worked on (resets its idle time)."""
        await self._once(
            lambda: self.redis.xclaim(
                self.stream(claimed.priority),
                GROUP,
                consumer,
                min_idle_time=0,
                message_ids=[claimed.entry],
                justid=True,
            )
        )

    async def ack(self, claimed: Claimed) -> None:
        # Counted only by the first acknowledgement: a batch two consumers finished counts once. One try: the
        # worker tries again while it is not stopping (gateway/schemes/worker.py).
        await self._once(
            lambda: self.redis.eval(
                _ACK, 2, self.stream(claimed.priority), self.run_key(claimed.run), GROUP, claimed.entry
            )  # type: ignore[misc]
        )

    async def depth(self) -> int:
        """Batches waiting or being worked on (acknowledged ones are deleted from the streams)."""

        async def depth() -> int:
            async with self.redis.pipeline(transaction=False) as pipe:
                for priority in PRIORITIES:
                    pipe.xlen(self.stream(priority))
                return sum(int(n) for n in await pipe.execute())

        return await self._once(depth)

    async def forget(self, run: int) -> None:
        await self._once(lambda: self.redis.delete(self.run_key(run), self.puts_key(run)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
