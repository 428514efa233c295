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

from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store.snapshot import SnapshotHolder

CHANNEL = "unigate:config-version"
RETRY_SECONDS = (0.1, 5.0)  # the first and the longest wait before subscribing again after a failure
# After this long without a word from Redis the listener PINGs it: a frozen or partitioned Redis leaves the
# subscription open and silent, and without asking, the listener would wait on it for ever, deaf to every
# announcement after Redis returns. A PING every 2 s of silence costs Redis nothing.
HEARTBEAT_SECONDS = 2.0
ANSWER_SECONDS = 5.0  # how long Redis has to answer when the client sets no socket timeout (redis-py's own)

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
        # The client's socket timeout (UNIGATE_REDIS_TIMEOUT) bounds the subscription's answers too.
        self.answer_seconds: float = (
            redis.connection_pool.connection_kwargs.get("socket_timeout") or ANSWER_SECONDS
        )
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
                    # Redis away (refusing, dropped, not answering) is said in a line; anything else in full.
                    away = isinstance(error, RedisError)
                    log.warning(
                        "config announcements lost (%s: %s); listening again",
                        type(error).__name__,
                        error,
                        exc_info=not away,
                    )
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
        # Not `listen()`: it waits for the next message without any bound, however long Redis stays silent.
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
            # Subscribed once Redis confirms it: a frozen Redis accepts connections but answers nothing.
            await self._answer(pubsub)
            self.subscribed.set()
            log.info("listening for config announcements")
            await self._refresh()  # whatever was announced while we were not listening
            while True:
                message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                if message is None:
                    await pubsub.ping()
                    message = await self._answer(pubsub)  # the PONG, or an announcement before it
                if message["type"] == "message":
                    await self._refresh()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _answer(self, pubsub: Any) -> dict[str, Any]:
        """The next thing Redis says on the subscription, within the client's socket timeout."""
        message: dict[str, Any] | None = await pubsub.get_message(timeout=self.answer_seconds)
        if message is None:
            raise RedisTimeoutError(f"Redis did not answer the subscription within {self.answer_seconds} s")
        return message

    async def _refresh(self) -> None:
        try:
            await self.snapshots.refresh_if_changed()
        except Exception:  # the database is away: keep serving the snapshot we have, as the poll does
            log.exception("config snapshot refresh failed")
