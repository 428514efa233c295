"""The one way out to a backend: a shared connection pool, and the backend protection around every call.

For each connection (`Target`): its circuit breaker, its QPS and concurrency caps (cluster-wide through
Redis when configured), a timeout per attempt, and retries with jittered backoff for retryable failures
only: transport errors on idempotent calls, HTTP 429/503 (honouring Retry-After) and the vendor's own
"too frequent" answer, which a client signals by raising VendorRateLimited from its `read`.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

import msgspec

from gateway import metrics
from gateway.errors import UpstreamBusy, UpstreamError, UpstreamTimeout, VendorError, VendorRateLimited
from gateway.httpclient import Pool, TransportError
from policies.backend import BackendOptions, Breaker, Caps, LocalCaps, capped, parse_options

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({429, 503})
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class Target:
    """One connection as the way out sees it: its options, its breaker; built once per options."""

    def __init__(
        self, connection: str, system: str, options: BackendOptions, timeout: float, retries: int
    ) -> None:
        self.connection = connection
        self.system = system
        self.options = options
        self.timeout_seconds = options.timeout_seconds or timeout
        self.retries = options.retries if options.retries is not None else retries
        self.connect_timeout = min(3.0, self.timeout_seconds)
        self.breaker = Breaker(connection, system, options.breaker)
        self.capped = options.qps is not None or options.concurrency is not None


class Upstream:
    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        pool_size: int = 100,
        caps: Caps | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.caps: Caps = caps or LocalCaps()
        self._pool_size = pool_size
        self._pool: Pool | None = None
        self._targets: dict[str, Target] = {}

    @property
    def pool(self) -> Pool:
        # Created lazily, inside the event loop that will use it.
        if self._pool is None:
            self._pool = Pool(limit=self._pool_size)
        return self._pool

    def target(self, connection: str, system: str, options: Mapping[str, Any] | None = None) -> Target:
        """The protection of `connection`; kept (with its breaker's state) while its options stay the same."""
        parsed = parse_options(options)
        current = self._targets.get(connection)
        if current is None or current.options != parsed or current.system != system:
            current = self._targets[connection] = Target(
                connection, system, parsed, self.timeout_seconds, self.retries
            )
        return current

    def breaker_states(self) -> dict[str, str]:
        return {name: target.breaker.current() for name, target in sorted(self._targets.items())}

    async def post_form(
        self,
        target: Target,
        url: str,
        form: Callable[[], Mapping[str, str] | bytes],
        read: Callable[[int, bytes], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """POST `form()` (built afresh for each attempt: signatures carry a timestamp; a mapping, or its
        `form_body` already encoded) and return `read`'s result. `read` raises VendorRateLimited for a
        "too frequent" answer, which is retried; any other error it raises reaches the caller."""
        name = target.connection
        for attempt in range(target.retries + 1):
            last = attempt == target.retries
            target.breaker.enter()
            try:
                if target.capped:
                    async with capped(
                        self.caps, name, target.options, system=target.system, budget=target.timeout_seconds
                    ):
                        status, retry_after, body = await self._send(target, url, form(), idempotent)
                else:  # no caps to hold: not even the context manager's generator, built per call
                    status, retry_after, body = await self._send(target, url, form(), idempotent)
            except UpstreamBusy:
                target.breaker.abandon()
                metrics.upstream_call(name, "busy")
                raise
            except UpstreamTimeout:
                # Not retried: a backend that is slow now is slower still with our retries on top.
                target.breaker.failure()
                metrics.upstream_call(name, "timeout")
                raise
            except UpstreamError:
                target.breaker.failure()
                metrics.upstream_call(name, "transport_error")
                if idempotent and not last:
                    await self._backoff(target, attempt)
                    continue
                raise
            except BaseException:
                target.breaker.abandon()
                raise
            if status in RETRYABLE_STATUS or status >= 500:
                (target.breaker.success if status == 429 else target.breaker.failure)()
                metrics.upstream_call(name, "http_error")
                if status in RETRYABLE_STATUS and not last:
                    wait = retry_after if retry_after is not None else self._delay(target, attempt)
                    if wait > target.timeout_seconds:
                        raise UpstreamBusy(
                            f"{name} asks us to wait {wait:.0f}s (HTTP {status}, Retry-After)",
                            system=target.system,
                            retry_after=wait,
                            connection=name,
                        )
                    metrics.child(metrics.UPSTREAM_RETRIES, name).inc()
                    await asyncio.sleep(wait)
                    continue
            try:
                result = read(status, body)
            except VendorRateLimited:
                target.breaker.success()  # it answered: alive, only busy
                metrics.upstream_call(name, "rate_limited")
                if last:
                    raise
                # The vendor counts calls per second or longer: a first retry within 0.5 s would only
                # meet the same full window, so this backoff starts one step further up.
                await self._backoff(target, attempt + 1)
                continue
            except VendorError:
                target.breaker.success()
                metrics.upstream_call(name, "vendor_error")
                raise
            except UpstreamError:
                if status < 500:  # answered 2xx/4xx with something that is not its envelope
                    target.breaker.failure()
                    metrics.upstream_call(name, "http_error")
                raise
            except BaseException:
                target.breaker.abandon()
                raise
            if status < 500:
                target.breaker.success()
                metrics.upstream_call(name, "ok")
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self, target: Target, url: str, data: Mapping[str, str] | bytes, idempotent: bool
    ) -> tuple[int, float | None, bytes]:
        """One attempt; transport failures become UpstreamError, timeouts UpstreamTimeout."""
        started = time.perf_counter()
        try:
            answer = await self.pool.request(
                "POST",
                url,
                headers=FORM_HEADERS,
                body=data if isinstance(data, bytes) else form_body(data),
                connect_timeout=target.connect_timeout,
                idempotent=idempotent,
                timeout=target.timeout_seconds,
            )
        except TimeoutError:
            raise UpstreamTimeout(
                f"{target.system} did not answer in time ({target.timeout_seconds:g}s)",
                system=target.system,
                connection=target.connection,
            ) from None
        except (TransportError, OSError) as exc:
            raise UpstreamError(
                f"{target.system} is unreachable: {_transport_failure(exc)}",
                system=target.system,
                connection=target.connection,
            ) from None
        finally:
            metrics.upstream_attempt(target.connection, time.perf_counter() - started)
        return answer.status, _retry_after(answer.headers.get("retry-after")), answer.body

    def _delay(self, target: Target, attempt: int) -> float:
        # Exponential backoff with jitter, so callers throttled together do not come back together.
        return target.options.backoff_seconds * 2**attempt * random.uniform(0.5, 1.0)

    async def _backoff(self, target: Target, attempt: int) -> None:
        metrics.child(metrics.UPSTREAM_RETRIES, target.connection).inc()
        await asyncio.sleep(self._delay(target, attempt))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def _transport_failure(exc: Exception) -> str:
    """What went wrong, in words for the caller: not a Python class name, nor the backend's address (which
    an OSError's own text carries)."""
    if isinstance(exc, TransportError):
        return str(exc)  # this client's own words, about the answer
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "the connection was cut"
    if isinstance(exc, socket.gaierror):
        return "its host name could not be resolved"
    return "a network error"


def form_body(data: Mapping[str, Any]) -> bytes:
    """`urllib.parse.urlencode(data)` as bytes, each key and value quoted once per distinct text: a form's
    times, ids and page numbers repeat from call to call, and quoting them was ~4% of a list request."""
    return "&".join(form_pair(key, str(value)) for key, value in data.items()).encode()


def form_pair(key: str, value: str) -> str:
    """`key=value` as `urlencode` writes one pair."""
    return f"{form_quoted(key)}={form_quoted(value)}"


@lru_cache(maxsize=4096)
def form_quoted(text: str) -> str:
    """`text` as `urlencode` quotes it (quote_plus), remembered: a form's texts repeat."""
    return urllib.parse.quote_plus(text)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delta-seconds form; an HTTP date is read as 'soon')."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def json_answer(
    system: str, status: int, body: bytes, decoder: msgspec.json.Decoder[Any] | None = None
) -> dict[str, Any]:
    """A backend's answer as a JSON object, or UpstreamError saying what it was instead.

    `decoder` (typed with what the caller reads, gateway.mapping.reads) skips building the rest; an answer
    that does not fit its type is decoded whole, so a surprise in it reaches the mapping as it was sent."""
    if status != 200:
        raise UpstreamError(f"{system} answered HTTP {status}", system=system)
    try:
        if decoder is not None:
            try:
                answer = decoder.decode(body)
            except msgspec.ValidationError:
                answer = msgspec.json.decode(body)
        else:
            answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(f"{system} answered with something that is not JSON", system=system) from None
    if not isinstance(answer, dict):
        raise UpstreamError(f"{system} answered without its envelope", system=system)
    return answer
