"""The way out's HTTP/1.1 client: keep-alive connections per origin, answers parsed by httptools.

Why not aiohttp's client (DESIGN.md's first choice; its server still runs the simulators): a 22 KB
vendor answer cost it 110-170 us of CPU a call (request and response objects, a task per request to
write the body, timer handles, header multidicts), the largest share of a /v1/stockouts request. The
same exchange over an asyncio protocol and httptools (the C parser uvicorn uses) costs ~30 us
(`bench/http_client.py` prints both). What the gateway asks of a client is small and all here: one
request at a time per connection, a body out, a sized or chunked body back, pooled keep-alive
connections under a bound, TLS, connect and total timeouts.

An answer is whole or it is an error: a connection that closes early, an answer larger than
MAX_BODY or one that does not parse raises TransportError, and the connection is never reused. An
answer with neither Content-Length nor chunks ends when the server closes the connection.
A pooled connection the server closed is dropped when taken; one that turns out dead before any
byte of its answer arrived is replaced once, for requests the caller marks idempotent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

MAX_BODY = 64 * 1024 * 1024
# Idle connections are closed after this long: below common servers' keep-alive timeouts (nginx 75 s),
# so a pooled connection is rarely one the server is closing at the same moment.
IDLE_SECONDS = 15.0
USER_AGENT = b"unigate"


class TransportError(Exception):
    """The exchange failed before a whole answer came; `started`: some of the answer had arrived."""

    def __init__(self, message: str, *, started: bool = False) -> None:
        super().__init__(message)
        self.started = started


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int
    host_header: bytes
    target: bytes  # path and query
    pool: tuple[str, str, int]  # (scheme, host, port): the connections it may share


@lru_cache(maxsize=1024)
def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rpartition("@")[2]
    pool = (parts.scheme, parts.hostname, port)
    return _Origin(parts.scheme, parts.hostname, port, netloc.encode("idna"), target.encode(), pool)


class _Connection(asyncio.Protocol):
    """One connection; one exchange at a time. httptools calls the on_* methods as bytes arrive."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.started = False
        self.until_close = False
        self.closed = False
        self.idle_since = 0.0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self._close()
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"the answer is not valid HTTP: {exc}", started=True))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and self.until_close and exc is None:
            # Neither a length nor chunks: the answer's body was everything up to the close.
            self.on_message_complete()
            return
        self._fail(TransportError("the connection closed before the whole answer came", started=self.started))

    # -- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.until_close = "content-length" not in self.headers and "chunked" not in self.headers.get(
            "transfer-encoding", ""
        )

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            self._fail(TransportError(f"the answer is larger than {MAX_BODY} bytes", started=True))
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if not self.parser.should_keep_alive():
            self._close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self.parser.get_status_code(), self.headers, b"".join(self.chunks)))

    # -- the exchange --------------------------------------------------------------------------

    def send(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.headers, self.chunks, self.size, self.started, self.until_close = {}, [], 0, False, False
        self.waiter = loop.create_future()
        self.transport.write(data)
        return self.waiter

    def expire(self) -> None:
        """The caller's time is up: the exchange fails with TimeoutError, and the connection is closed
        (unless the whole answer came just before, in the same turn of the loop)."""
        if self.waiter is not None:
            self._fail(TimeoutError("the answer did not come in time"))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Keep-alive connections per origin, at most `limit` exchanges at once across all origins."""

    def __init__(self, *, limit: int = 100, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)
        self._ssl = ssl_context

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes = b"",
        connect_timeout: float = 3.0,
        idempotent: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109  (cheaper than asyncio.timeout: see below)
    ) -> Answer:
        """One exchange (TransportError or OSError when the connection fails). `timeout` bounds the whole
        of it, the wait for a slot, a new connection and the exchange, with TimeoutError (a caller may
        instead wrap the call in `asyncio.timeout`); a timed-out exchange's connection is closed, not
        reused. Given here, it costs one timer on the answer's future where `asyncio.timeout` costs
        ~3x that (a cancellation scope on the task), and only a wait for a slot or a connection, both
        rare, takes a scope of its own."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        origin = _origin(url)
        data = _head(method, origin, headers, len(body)) + body
        if deadline is not None and self._slots.locked():
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()
        try:
            connection, reused = await self._take(origin, connect_timeout, deadline)
            try:
                return await self._exchange(origin, connection, data, deadline)
            except TransportError as exc:
                if not (reused and idempotent and not exc.started):
                    raise
            # A pooled connection the server had given up on: once more, on a new one.
            connection = await self._connect(origin, connect_timeout, deadline)
            return await self._exchange(origin, connection, data, deadline)
        finally:
            self._slots.release()

    async def _exchange(
        self, origin: _Origin, connection: _Connection, data: bytes, deadline: float | None
    ) -> Answer:
        loop = asyncio.get_running_loop()
        timer = None if deadline is None else loop.call_at(deadline, connection.expire)
        try:
            answer = await connection.send(data, loop)
        except BaseException:
            connection._close()  # mid-exchange (timeout, cancel, failure): never reused
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not connection.closed:
            connection.idle_since = loop.time()
            self._idle.setdefault(origin.pool, []).append(connection)
        return answer

    async def _take(
        self, origin: _Origin, connect_timeout: float, deadline: float | None
    ) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin.pool)
        if idle:
            oldest_kept = asyncio.get_running_loop().time() - IDLE_SECONDS
            while idle:
                connection = idle.pop()  # the most recently used: the least likely to be stale
                if not connection.closed and connection.idle_since >= oldest_kept:
                    return connection, True
                connection._close()
        return await self._connect(origin, connect_timeout, deadline), False

    async def _connect(self, origin: _Origin, connect_timeout: float, deadline: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if origin.scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        until = loop.time() + connect_timeout
        async with asyncio.timeout_at(until if deadline is None else min(until, deadline)):
            _, connection = await loop.create_connection(
                _Connection, origin.host, origin.port, ssl=tls, server_hostname=origin.host if tls else None
            )
        return connection

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection._close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing before the loop goes away


def _head(method: str, origin: _Origin, headers: Mapping[str, str], length: int) -> bytes:
    before, after = _head_around_length(method, origin, tuple(headers.items()))
    return b"%s%d%s" % (before, length, after)


@lru_cache(maxsize=256)
def _head_around_length(
    method: str, origin: _Origin, headers: tuple[tuple[str, str], ...]
) -> tuple[bytes, bytes]:
    """A request's head before its Content-Length value and after it: the same for every call of a URL."""
    before = b"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Length: " % (
        method.encode(),
        origin.target,
        origin.host_header,
        USER_AGENT,
    )
    after = b"".join(f"\r\n{name}: {value}".encode("latin-1") for name, value in headers) + b"\r\n\r\n"
    return before, after
