"""Stopping the snapshot poll lets a refresh in flight finish: a database query cancelled halfway goes on in
aiosqlite's thread and hands its answer to an event loop that may be closed by then."""

from __future__ import annotations

import asyncio
import logging

import pytest
from cryptography.fernet import Fernet

from gateway.store.crypto import Vault
from gateway.store.snapshot import EMPTY, Snapshot, SnapshotHolder


class SlowStore(SnapshotHolder):
    """The poll's refresh waits for `release`, as a slow query would; nothing else is touched."""

    def __init__(self, grace: float = 5.0) -> None:
        super().__init__(Vault(Fernet.generate_key().decode()), poll_seconds=0.01)
        self.STOP_GRACE_SECONDS = grace
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False
        self.cancelled = False

    async def refresh(self) -> Snapshot:
        return EMPTY

    async def refresh_if_changed(self) -> bool:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return False


async def test_stop_waits_for_the_refresh_in_flight_instead_of_cancelling_it() -> None:
    holder = SlowStore()
    await holder.start()
    await holder.started.wait()
    stopping = asyncio.create_task(holder.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the refresh is still running: stop waits for it
    holder.release.set()
    await asyncio.wait_for(stopping, 1)
    assert holder.finished and not holder.cancelled


async def test_stop_between_refreshes_is_prompt_and_polls_no_more() -> None:
    holder = SlowStore()
    holder.release.set()  # refreshes finish at once
    await holder.start()
    await holder.started.wait()
    await asyncio.wait_for(holder.stop(), 1)
    holder.started.clear()
    await asyncio.sleep(0.05)
    assert not holder.started.is_set()


async def test_a_refresh_that_outlasts_the_grace_is_cancelled() -> None:
    holder = SlowStore(grace=0.05)
    await holder.start()
    await holder.started.wait()
    await asyncio.wait_for(holder.stop(), 1)
    assert holder.cancelled and not holder.finished


class DownStore(SnapshotHolder):
    """A database away for `down` polls, then back."""

    def __init__(self, down: int) -> None:
        super().__init__(Vault(Fernet.generate_key().decode()), poll_seconds=0.001)
        self.down = down
        self.polls = 0
        self.back_a_while = asyncio.Event()

    async def refresh(self) -> Snapshot:
        return EMPTY

    async def refresh_if_changed(self) -> bool:
        self.polls += 1
        if self.polls <= self.down:
            raise ConnectionRefusedError("database away")
        if self.polls >= self.down + 10:
            self.back_a_while.set()
        return False


async def test_a_database_away_for_many_polls_is_logged_once_then_its_return(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every poll of every worker used to log a full traceback while the database was away."""
    holder = DownStore(down=50)
    with caplog.at_level(logging.INFO, logger="unigate.snapshot"):
        await holder.start()
        await asyncio.wait_for(holder.back_a_while.wait(), 10)
        await holder.stop()
    said = [(record.levelname, record.getMessage(), record.exc_info is not None) for record in caplog.records]
    assert said == [
        ("ERROR", "config snapshot refresh failed; serving the last snapshot meanwhile", True),
        ("WARNING", "config snapshot refresh works again", False),
    ]
