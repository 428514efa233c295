"""The counters' way to Redis: one pipelined connection carrying commands packed once, parsed by hiredis.
Used instead of redis-py's command path, whose ~50-100 us of CPU a call is more than the chain may cost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def _reply_error(message: str) -> ResponseError:
    # The one error reply the counters act on; redis-py names it the same way.
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class _Protocol(asyncio.Protocol):
    """Replies are matched to waiters in order: Redis answers pipelined commands one by one."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []  # commands of this turn of the event loop, sent together at its end
        self.transport: Any = None  # asyncio's or uvloop's (which is not an asyncio.Transport subclass)
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.waiters:
            reply = self.reader.gets()
            if reply is False:
                return
            waiter = self.waiters.popleft()
            if not waiter.done():  # its caller may have given up (cancelled); the reply is dropped
                waiter.set_result(reply)

    def send(self, command: bytes) -> None:
        """Write a command at once when it is the only one in flight; else queue it: the commands of
        every request reaching Redis in this turn of the loop go out in one write at its end (one
        system call, where each would cost about as much as the rest of the round trip)."""
        if self.outgoing:
            self.outgoing.append(command)
        elif len(self.waiters) == 1:  # its own: nothing else in flight, so nothing to wait for
            self.transport.write(command)
        else:
            asyncio.get_running_loop().call_soon(self.flush)
            self.outgoing.append(command)

    def flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.lost is None:
            self.transport.write(b"".join(outgoing) if len(outgoing) > 1 else outgoing[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"the connection to Redis was lost: {exc or 'closed by Redis'}")
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


class Lane:
    """A pipelined connection, opened on first use and again after it is lost.

    hiredis packs and parses (the C code redis-py itself uses) and an asyncio protocol carries the bytes:
    ~15 us a round trip, against redis-py's argument encoding, pool bookkeeping, retry and timeout
    wrappers and stream readers. Requests that overlap share the connection, pipelined (the commands
    of one turn of the event loop go out in one write), and Redis answers in order. The connection
    settings (host, port or socket path, database, user, password, timeouts) are the redis-py
    client's, which stays in charge of everything else; `supports` says whether its connections can
    be carried here (TLS cannot: the counters then use redis-py).
    """

    def __init__(self, redis: Any) -> None:
        pool = redis.connection_pool
        kwargs = pool.connection_kwargs
        unix = issubclass(pool.connection_class, UnixDomainSocketConnection)
        self.path: str | None = kwargs.get("path") if unix else None
        self.host: str = kwargs.get("host", "localhost")
        self.port: int = int(kwargs.get("port", 6379))
        self.db = int(kwargs.get("db") or 0)
        self.username: str | None = kwargs.get("username")
        self.password: str | None = kwargs.get("password")
        self.connect_timeout: float | None = kwargs.get("socket_connect_timeout") or kwargs.get(
            "socket_timeout"
        )
        self.timeout: float | None = kwargs.get("socket_timeout")
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Future[_Protocol] | None = None

    @staticmethod
    def supports(redis: Any) -> bool:
        """Plain TCP or a Unix socket; TLS (and unknown connection kinds) stay with redis-py."""
        kind = redis.connection_pool.connection_class
        plain = issubclass(kind, Connection | UnixDomainSocketConnection)
        return plain and not issubclass(kind, SSLConnection)

    async def call(self, command: bytes) -> Any:
        """Send one packed command; its reply, or the error reply raised as redis-py would raise it."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._open()
        assert protocol.transport is not None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        protocol.waiters.append(waiter)
        protocol.send(command)
        if self.timeout is None:
            reply = await waiter
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    reply = await waiter
            except TimeoutError:
                # Replies behind this one would be matched to the wrong waiters: start afresh.
                protocol.transport.abort()
                raise RedisTimeoutError("Redis did not answer in time") from None
        if isinstance(reply, hiredis.ReplyError):
            raise _reply_error(str(reply))
        return reply

    async def _open(self) -> _Protocol:
        if self._opening is None or self._opening.done():  # one attempt at a time, shared by its waiters
            self._opening = asyncio.ensure_future(self._connect())
        opening = self._opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path is not None:
                    _, protocol = await loop.create_unix_connection(_Protocol, self.path)
                else:
                    _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        setup: list[tuple[Any, ...]] = []
        if self.password is not None:
            setup.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            setup.append(("SELECT", self.db))
        self._protocol = protocol
        try:
            for command in setup:
                await self.call(hiredis.pack_command(command))
        except BaseException:
            self.close()
            raise
        return protocol

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
