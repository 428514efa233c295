"""Failed sign-ins per client address and username, counted with `limits` (Redis when configured, so
every node counts together; else in this process): guessing passwords is slowed to a crawl."""

from __future__ import annotations

import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from gateway.errors import RateLimited

FAILURES = RateLimitItemPerMinute(10, 10)  # ten failed sign-ins in ten minutes


class SignInThrottle:
    def __init__(self, redis_url: str | None) -> None:
        storage: Storage = RedisStorage(f"async+{redis_url}") if redis_url else MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)

    async def check(self, address: str, username: str) -> None:
        if not await self.limiter.test(FAILURES, address, username.lower()):
            stats = await self.limiter.get_window_stats(FAILURES, address, username.lower())
            raise RateLimited(
                "too many failed sign-ins: wait a few minutes before trying again",
                retry_after=max(1.0, stats.reset_time - time.time()),
            )

    async def failed(self, address: str, username: str) -> None:
        await self.limiter.hit(FAILURES, address, username.lower())
