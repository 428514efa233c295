"""The Redis client of the gateway, the CLI and `unigate worker`: every call bounded by
UNIGATE_REDIS_TIMEOUT and not tried again when it times out, so a Redis that hangs (a frozen host, a
partition) is away, not a hang. A call whose pooled connection turns out closed (Redis restarted since
it was opened) is tried once more on a new one: a Redis that is back is not taken for away."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.settings import Settings


def connect(settings: Settings, *, longest_block: float = 0.0) -> Redis | None:
    """A client of REDIS_URL (None without it).

    `longest_block` is the longest a command of this client waits inside Redis on purpose (XREADGROUP
    BLOCK): it is added to the socket timeout, or every such wait would end as a timeout. Opening a
    connection never blocks on purpose, so the setting alone bounds it."""
    if not settings.redis_url:
        return None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds + longest_block,
        socket_connect_timeout=settings.redis_timeout_seconds,
        # A timeout is not retried: the caller knows whether to try again (a queue call waits for Redis, an
        # announcement does not); a connection that timed out is dropped, never reused for a late reply.
        # A connection error is, once, at once: after a restart of Redis every pooled connection is dead,
        # and each would otherwise fail one call (a second of per-node limits and caps, each time).
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
