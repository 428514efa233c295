"""The CLI's and the worker's Redis client: each call bounded by UNIGATE_REDIS_TIMEOUT, a blocking read by
its block on top, and tried once (gateway/redis_client.py)."""

from __future__ import annotations

import msgspec

from gateway import redis_client
from gateway.settings import Settings


async def test_calls_are_bounded_by_the_setting_and_a_blocking_read_by_its_block_on_top() -> None:
    settings = msgspec.structs.replace(
        Settings(), redis_url="redis://127.0.0.1:1/0", redis_timeout_seconds=0.3
    )
    plain, blocking = redis_client.connect(settings), redis_client.connect(settings, longest_block=0.5)
    assert plain is not None and blocking is not None
    try:
        assert plain.connection_pool.connection_kwargs["socket_timeout"] == 0.3
        assert blocking.connection_pool.connection_kwargs["socket_timeout"] == 0.8
        for client in (plain, blocking):
            assert client.connection_pool.connection_kwargs["socket_connect_timeout"] == 0.3
            assert client.get_retry() is not None and client.get_retry().get_retries() == 0
    finally:
        await plain.aclose()
        await blocking.aclose()


def test_no_client_without_redis_url() -> None:
    assert redis_client.connect(Settings()) is None
