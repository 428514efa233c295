"""Hot reload across nodes: every config change announces its version on Redis; every node reloads on it.

The announcement is a hint, not the truth: a node that hears it (or whose poll notices a new
version) reloads the whole snapshot from the database and swaps it in at once, so a request sees
the old config or the new one, never a mix. If Redis is away, the poll still converges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from gateway.store.snapshot import SnapshotHolder

CHANNEL = "unigate:config-version"
RETRY_SECONDS = (0.1, 5.0)  # the first and the longest wait before subscribing again after a failure

log = logging.getLogger("unigate.reload")


class Announcer:
    """Publishes a new config version; install it with `gateway.store.snapshot.publish_versions_with`."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def __call__(self, version: int) -> None:
        await self.redis.publish(CHANNEL, str(version))


class ReloadListener:
    """Refreshes the snapshot whenever another node (or the CLI) announces a new version."""

    def __init__(self, redis: Any, snapshots: SnapshotHolder) -> None:
        self.redis = redis
        self.snapshots = snapshots
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while listening; tests and readiness can wait on it

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="config-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        wait = RETRY_SECONDS[0]
        failing = False  # within a run of failures: the first is logged whole, the others in a line
        while True:
            try:
                await self._listen()
            except Exception as error:
                if self.subscribed.is_set() or not failing:
                    log.warning("config announcements lost; listening again", exc_info=True)
                else:
                    log.warning(
                        "config announcements still unavailable (%s); trying again in %.1f s",
                        type(error).__name__,
                        min(wait * 2, RETRY_SECONDS[1]),
                    )
                failing = True
            # Back off while Redis stays away; start small again after a connection that worked.
            wait = RETRY_SECONDS[0] if self.subscribed.is_set() else min(wait * 2, RETRY_SECONDS[1])
            self.subscribed.clear()
            await asyncio.sleep(wait)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            self.subscribed.set()
            log.info("listening for config announcements")
            await self._refresh()  # whatever was announced while we were not listening
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    await self._refresh()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _refresh(self) -> None:
        try:
            await self.snapshots.refresh_if_changed()
        except Exception:  # the database is away: keep serving the snapshot we have, as the poll does
            log.exception("config snapshot refresh failed")
