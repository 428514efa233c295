"""Failed sign-ins per client address and username, and per address whatever the username, and sign-ups per
address, counted with `limits` (Redis when configured, so every node counts together; else in this
process): guessing a password, spraying one over many usernames and making accounts by the hundred are
slowed to a crawl. The address is the caller's, read through the trusted proxies as the gateway reads it."""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItemPerHour, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from gateway.errors import RateLimited
from policies.ipfilter import Proxies

FAILURES = RateLimitItemPerMinute(10, 10)  # ten failed sign-ins of one username in ten minutes
SPRAY = RateLimitItemPerMinute(50, 10)  # fifty failed sign-ins from one address in ten minutes, any names
SIGNUPS = RateLimitItemPerHour(20)  # twenty new accounts from one address in an hour
ANY_NAME = "*"  # usernames are never "*": the spray counter's key


class SignInThrottle:
    def __init__(self, redis_url: str | None, proxies: Proxies) -> None:
        storage: Storage = RedisStorage(f"async+{redis_url}") if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)
        self.proxies = proxies

    def address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The caller's address: behind a load balancer the peer is the balancer, shared by everyone."""
        client = self.proxies.client(peer, forwarded_for)
        return str(client) if client is not None else peer or ""

    async def check(self, address: str, username: str) -> None:
        for limit, name in ((FAILURES, username.lower()), (SPRAY, ANY_NAME)):
            if not await self.limiter.test(limit, address, name):
                await self._refuse(
                    limit, "too many failed sign-ins: wait a few minutes before trying again", address, name
                )

    async def failed(self, address: str, username: str) -> None:
        await self.limiter.hit(FAILURES, address, username.lower())
        await self.limiter.hit(SPRAY, address, ANY_NAME)

    async def check_signup(self, address: str) -> None:
        """Refuses a sign-up when this address made too many accounts of late (refused attempts, a typo in
        a form, do not count: `signed_up` counts the accounts made)."""
        if not await self.limiter.test(SIGNUPS, address):
            await self._refuse(SIGNUPS, "too many new accounts from this address: try again later", address)

    async def signed_up(self, address: str) -> None:
        await self.limiter.hit(SIGNUPS, address)

    async def _refuse(self, limit: Any, message: str, *keys: str) -> None:
        stats = await self.limiter.get_window_stats(limit, *keys)
        raise RateLimited(message, retry_after=max(1.0, stats.reset_time - time.time()))
