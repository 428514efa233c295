"""While Redis stays away, the reload listener says so once, naming the error, then in one line per retry;
never with a traceback (Redis away is an expected condition, not a bug)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.store.crypto import Vault
from gateway.store.snapshot import SnapshotHolder
from policies.reload import ReloadListener
from tests.services import free_port


async def test_a_redis_that_stays_away_is_logged_once_then_a_line_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    listener = ReloadListener(redis, SnapshotHolder(Vault(Fernet.generate_key().decode()), 1.0))
    with caplog.at_level(logging.WARNING, logger="unigate.reload"):
        listener.start()
        await asyncio.sleep(1.2)  # retries after 0.2, 0.4 and 0.8 s
        await listener.stop()
    await redis.aclose()
    records = [r for r in caplog.records if r.name == "unigate.reload"]
    assert len(records) >= 3
    assert "config announcements lost (ConnectionError:" in records[0].getMessage()
    assert not any(r.exc_info for r in records)
    assert all("still unavailable" in r.getMessage() for r in records[1:])
