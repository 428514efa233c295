"""The CLI's and the worker's Redis client: each call bounded by UNIGATE_REDIS_TIMEOUT, a blocking read by
its block on top, not tried again after a timeout, and once more on a new connection after a closed
one (gateway/redis_client.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from gateway import redis_client
from gateway.settings import Settings
from tests.services import HOST, free_port, require_binary, run_process


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
            assert client.get_retry() is not None and client.get_retry().get_retries() == 1
    finally:
        await plain.aclose()
        await blocking.aclose()


def test_no_client_without_redis_url() -> None:
    assert redis_client.connect(Settings()) is None


async def test_after_redis_restarts_the_first_calls_reach_it_on_new_connections(tmp_path: Path) -> None:
    """Every pooled connection is dead once Redis has restarted: each is replaced on its first use, not
    failed (the limits, caps and cache would take that failure for Redis being away, a second each time)."""
    port = free_port()
    command = [require_binary("redis-server", "redis-server"), "--port", str(port), "--bind", HOST,
               "--save", "", "--appendonly", "no"]  # fmt: skip
    settings = msgspec.structs.replace(Settings(), redis_url=f"redis://{HOST}:{port}/0")
    client = redis_client.connect(settings)
    assert client is not None
    try:
        with run_process(command, log_path=tmp_path / "first.log", ready_port=port):
            # Several connections in the pool, as under load.
            await asyncio.gather(*(client.blpop(f"nothing-{n}", timeout=0.2) for n in range(4)))
            assert len(client.connection_pool._available_connections) >= 2
        with run_process(command, log_path=tmp_path / "second.log", ready_port=port):
            answers = await asyncio.gather(*(client.incr("after-restart") for _ in range(4)))
            assert sorted(answers) == [1, 2, 3, 4]
    finally:
        await client.aclose()
