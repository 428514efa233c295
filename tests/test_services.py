"""The real-server fixtures of tests/services.py start servers that answer, and stop them."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.services import Service, free_port, run_process


async def test_redis_url_stores_and_reads_back_a_value(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set("unigate:test", "ok")
        assert await client.get("unigate:test") == b"ok"
    finally:
        await client.aclose()


async def test_redis_url_starts_empty(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


async def test_postgres_server_answers_a_query(postgres_server: Service) -> None:
    conn = await asyncpg.connect(postgres_server.url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == "unigate_test"
    finally:
        await conn.close()


def test_run_process_waits_for_http_and_stops_the_process(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with run_process(cmd, ready_url=f"http://127.0.0.1:{port}/", log_path=tmp_path / "http.log") as proc:
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    assert proc.returncode is not None


def test_run_process_shows_the_log_when_the_process_dies(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "print('bad config: no key'); raise SystemExit(3)"]
    with (
        pytest.raises(RuntimeError, match="bad config: no key"),
        run_process(cmd, ready_port=free_port(), log_path=tmp_path / "dies.log"),
    ):
        pass
