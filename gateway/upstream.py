"""The one way out to a backend: a shared aiohttp session with timeouts and connection pools.

Every connector sends through `Upstream`, so backend protection (caps, retries, breaker) has
one place to live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from gateway.errors import UpstreamError, UpstreamTimeout


class Upstream:
    def __init__(self, *, timeout_seconds: float = 10.0, pool_size: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=min(3.0, timeout_seconds))
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300),
                raise_for_status=False,
            )
        return self._session

    async def post_form(self, url: str, data: Mapping[str, str], *, system: str) -> tuple[int, bytes]:
        """POST a form; return (status, body). Transport failures become UpstreamError."""
        try:
            async with self.session.post(url, data=dict(data)) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise UpstreamTimeout(f"{system} did not answer in time", system=system) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{system} is unreachable: {type(exc).__name__}", system=system) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
