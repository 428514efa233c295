"""The work queue between a run's source pull and the workers: batches of records, by priority.

Redis Streams with one consumer group per priority stream, so several worker processes share the work
and a batch a killed worker held is claimed again once it has sat idle; each run's pull position is
written in the same transaction as its batches, so a pull taken over resumes where it stopped. Without
Redis, `MemoryQueue` does the same inside one process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.schemes.model import PRIORITIES

PREFIX = "unigate:schemes"
GROUP = "workers"
# One script, so the bound holds across every worker and the pull position moves with its batches.
_PUT = """
local n = #ARGV - 5
if n > 0 and tonumber(ARGV[1]) >= 0 then
  local depth = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2]) + redis.call('XLEN', KEYS[3])
  if depth > 0 and depth + n > tonumber(ARGV[1]) then return 0 end
end
for i = 6, #ARGV do
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
        bound: int | None = None,
    ) -> bool:
        """Enqueue batches and record the pull position, all or nothing; False (nothing done) when the
        batches would take the queue above `bound` (an empty queue takes any one page)."""
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
        bound: int | None = None,
    ) -> bool:
        depth = await self.depth()
        if bound is not None and bodies and depth and depth + len(bodies) > bound:
            return False
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


class RedisQueue:
    """Redis Streams: `unigate:schemes:q:<priority>`, group `workers`; run state in `...:run:<id>`."""

    def __init__(self, redis: Redis, *, claim_idle_seconds: float = 30.0) -> None:
        self.redis = redis
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._ready = False
        self._last_reclaim = 0.0
        self._waiting: deque[Claimed] = deque()

    @staticmethod
    def stream(priority: str) -> str:
        return f"{PREFIX}:q:{priority}"

    @staticmethod
    def run_key(run: int) -> str:
        return f"{PREFIX}:run:{run}"

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
        bound: int | None = None,
    ) -> bool:
        await self._ensure()
        keys = [*(self.stream(p) for p in PRIORITIES), self.run_key(run), self.stream(priority)]
        args = [-1 if bound is None else bound, run, cursor or "", "1" if pull_done else "0", pulled, *bodies]
        return bool(await self.redis.eval(_PUT, len(keys), *keys, *args))  # type: ignore[misc]

    async def progress(self, run: int) -> Progress:
        raw = await self.redis.hgetall(self.run_key(run))
        state = {_text(k): _text(v) for k, v in raw.items()}
        return Progress(
            enqueued=int(state.get("enqueued", 0)),
            done=int(state.get("done", 0)),
            cursor=state.get("cursor") or None,
            pull_done=state.get("pull_done") == "1",
            pulled=int(state.get("pulled", 0)),
        )

    async def take(self, consumer: str, wait_seconds: float) -> Claimed | None:
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
        await self.redis.xclaim(
            self.stream(claimed.priority),
            GROUP,
            consumer,
            min_idle_time=0,
            message_ids=[claimed.entry],
            justid=True,
        )

    async def ack(self, claimed: Claimed) -> None:
        # Counted only by the first acknowledgement: a batch two consumers finished counts once.
        await self.redis.eval(
            _ACK, 2, self.stream(claimed.priority), self.run_key(claimed.run), GROUP, claimed.entry
        )  # type: ignore[misc]

    async def depth(self) -> int:
        """Batches waiting or being worked on (acknowledged ones are deleted from the streams)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for priority in PRIORITIES:
                pipe.xlen(self.stream(priority))
            return sum(int(n) for n in await pipe.execute())

    async def forget(self, run: int) -> None:
        await self.redis.delete(self.run_key(run))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
