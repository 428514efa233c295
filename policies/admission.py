"""Admission, backpressure and priority: a bounded number of requests in flight per node; the rest wait in
priority order (higher plan priority first, FIFO within a class) for a bounded time, then are shed with
503 `overloaded` and Retry-After, so latency stays bounded instead of growing with the backlog. A waiter
whose caller hangs up leaves the queue at once: it neither holds a place nor reaches the backend.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

import msgspec

from gateway import metrics
from gateway.errors import Overloaded
from policies.chain import Context

# What the access log and usage metering record for a request whose caller left before it was admitted
# (nginx's "client closed request"): no answer was sent.
CLIENT_CLOSED = 499


class AdmissionConfig(msgspec.Struct, frozen=True):
    """UNIGATE_ADMISSION_MAX_IN_FLIGHT, UNIGATE_ADMISSION_QUEUE, UNIGATE_ADMISSION_MAX_WAIT (seconds)."""

    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256
    max_queue: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1024
    max_wait_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 2.0


class _Departed(Exception):
    """The caller of a waiting request hung up."""


class _Waiter:
    __slots__ = ("future", "key", "timer")

    def __init__(self, key: tuple[int, int], future: asyncio.Future[None]) -> None:
        self.key = key  # (-priority, arrival): the heap serves the smallest first
        self.future = future
        self.timer: asyncio.TimerHandle | None = None

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key


class Admission:
    """Policy: hold the request until this node has room for it, or shed it."""

    def __init__(self, config: AdmissionConfig) -> None:
        self.config = config
        self.in_flight = 0
        self.waiting = 0
        self._heap: list[_Waiter] = []
        self._arrivals = itertools.count()
        # Read when /metrics is scraped, not written on every request (one Admission per process).
        metrics.watch_admission(lambda: self.in_flight, lambda: self.waiting)

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None:
        if self.in_flight < self.config.max_in_flight and not self.waiting:
            self._enter()
        else:
            try:
                await self._wait(ctx.priority, ctx.consumer.name if ctx.consumer else "", ctx)
            except _Departed:
                ctx.status = CLIENT_CLOSED  # nobody to answer: metering and the access log say why
                return
        try:
            await call_next(ctx)
        finally:
            self.release()

    async def _wait(self, priority: int, consumer: str, ctx: Context) -> None:
        waiter = _Waiter((-priority, next(self._arrivals)), asyncio.get_running_loop().create_future())
        if self.waiting >= self.config.max_queue:
            # Full: the lowest-priority, latest waiter makes room for a request that outranks it.
            lowest = max((w for w in self._heap if not w.future.done()), default=None)
            if lowest is None or not waiter < lowest:
                self._shed_count(consumer)
                raise self._overloaded("the gateway's wait queue is full")
            self._expire(lowest, "a request of a higher priority took its place in the queue")
        heapq.heappush(self._heap, waiter)
        self.waiting += 1
        waiter.timer = asyncio.get_running_loop().call_later(
            self.config.max_wait_seconds, self._expire, waiter, "no room for it within the wait bound"
        )
        # Watch for the caller hanging up while it waits; only a request without a body is watched, as
        # watching reads the request's messages (kept for the handler), and a body is the handler's to read.
        watcher = asyncio.ensure_future(self._watch(ctx, waiter)) if _bodiless(ctx) else None
        try:
            await waiter.future
        except asyncio.CancelledError:
            # The caller went away: give back a slot handed over meanwhile, or leave the queue.
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()
            elif future.cancelled() or not future.done():
                self._dequeue(waiter)
            raise
        except Overloaded:
            self._shed_count(consumer)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch(self, ctx: Context, waiter: _Waiter) -> None:
        """Read the request's messages while it waits: on `http.disconnect`, take it out of the queue.

        What is read is given back to the handler, in order, by the request's `receive`."""
        receive = cast(Callable[[], Awaitable[dict[str, Any]]], ctx.receive)
        kept: list[dict[str, Any]] = []

        async def replay() -> Any:
            return kept.pop(0) if kept else await receive()

        ctx.receive = replay
        while True:
            message = await receive()
            kept.append(message)
            if message["type"] == "http.disconnect":
                if not waiter.future.done():
                    self._dequeue(waiter)
                    waiter.future.set_exception(_Departed())
                return

    def release(self) -> None:
        """A request finished: hand its slot straight to the first waiter, else free it."""
        while self._heap:
            waiter = heapq.heappop(self._heap)
            if waiter.future.done():
                continue
            self._dequeue(waiter)
            waiter.future.set_result(None)
            return  # the slot passes over: in_flight is unchanged
        self.in_flight -= 1

    def _enter(self) -> None:
        self.in_flight += 1

    def _dequeue(self, waiter: _Waiter) -> None:
        """Take a waiter out of the count (its heap entry is skipped once its future is done)."""
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        self.waiting -= 1

    def _expire(self, waiter: _Waiter, reason: str) -> None:
        if waiter.future.done():
            return
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        waiter.future.set_exception(self._overloaded(reason))
        self.waiting -= 1

    def _overloaded(self, reason: str) -> Overloaded:
        return Overloaded(
            f"the gateway is at capacity ({self.config.max_in_flight} requests in flight): {reason}; "
            "retry after the time in Retry-After",
            retry_after=max(1.0, self.config.max_wait_seconds),
        )

    @staticmethod
    def _shed_count(consumer: str) -> None:
        metrics.limiter_rejected("admission", consumer)


def _bodiless(ctx: Context) -> bool:
    return ctx.headers.get("content-length", "0") == "0" and "transfer-encoding" not in ctx.headers
