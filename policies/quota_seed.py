"""What each subscription already used of its current quota day and month, by the metered usage, kept in
memory and refreshed off the hot path: where a quota counter that does not exist yet starts (not at 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import date

from gateway.store.snapshot import Snapshot
from gateway.store.usage_tables import UsageDaily
from policies.metering import UsageRecorder

log = logging.getLogger("unigate.limits")

# A config change (a quota set or raised) waits at most this long for the seeds on its first call; past
# it, that call counts from the seeds it has, and the background refresh catches up.
WAIT_ON_CHANGE_SECONDS = 2.0


def refresh_seconds(flush_seconds: float) -> float:
    """How often the seeds are read again: every 30 s with metering's 2 s flushes, never more often than
    usage is written (a read in between finds nothing new) and never more than a few times a flush."""
    return max(flush_seconds, min(30.0, 15 * flush_seconds))


# One row per subscription that used anything this month: the month's admitted calls, and today's.
SEED_QUERY = (
    'SELECT "consumer", "api", SUM("admitted") AS "month", '
    'SUM(CASE WHEN "day" = {} THEN "admitted" ELSE 0 END) AS "day" '
    'FROM "unigate_usage_daily" WHERE "day" >= {} AND "day" <= {} AND "admitted" > 0 '
    'GROUP BY "consumer", "api"'
)


class QuotaSeeds:
    """Per subscription (`(consumer id, api)`, as counters name it): calls admitted in the current quota
    day and month, as of the last refresh.

    A refresh is one bounded query (a row per subscription with calls this month), run every `every`
    seconds in a task of its own and once per config snapshot (a quota newly set must count what was
    used before it), plus what this node metered but has not written yet. Days are the usage table's
    days (UNIGATE_USAGE_TIMEZONE) named like the quota's (UNIGATE_QUOTA_TIMEZONE): exact when the two
    timezones are the same.
    """

    def __init__(
        self,
        recorder: UsageRecorder,
        every: float,
        period: Callable[[float], tuple[date, str, date, str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.recorder = recorder
        self.every = every
        self.period = period  # now -> (today, its name, the month's first day, its name), in quota time
        self.clock = clock
        self.day_name = self.month_name = ""
        self.used: dict[tuple[str, ...], tuple[int, int]] = {}
        self.generation = 0  # moves at each refresh: the tallies built from older seeds are rebuilt
        self.version = -1  # the newest config version the seeds were refreshed for (never goes back)
        self._refreshing: asyncio.Task[None] | None = None  # the refresh for a config change
        self._refreshing_for = -1  # the config version that refresh is for
        self._reads = 0  # refreshes started; a result read before the one applied last is dropped
        self._applied = 0
        self._loop: asyncio.Task[None] | None = None

    def seed(self, identifiers: tuple[str, ...], unit: str, name: str) -> int:
        """What the subscription already used of the period `name` (a day or a month); 0 for a period the
        last refresh was not in (a new day begins at 0)."""
        day, month = self.used.get(identifiers, (0, 0))
        if unit == "day":
            return day if name == self.day_name else 0
        return month if name == self.month_name else 0

    def stale_for(self, snapshot: Snapshot) -> bool:
        """Whether the seeds were last refreshed for an older config than `snapshot`'s."""
        return snapshot.version > self.version

    async def ready(self, snapshot: Snapshot) -> None:
        """Refresh once for `snapshot`'s config version, waiting a bounded time; starts the periodic task.

        The calls arriving while that refresh runs wait for the same one (or for one of a newer version);
        a request still carrying an older snapshot starts none. After it (or the wait) the version is
        marked done whatever the outcome, so a failing database costs once, not per request.
        """
        if self._loop is None:
            self._loop = asyncio.create_task(self._every())
        if snapshot.version > self._refreshing_for:
            if self._refreshing is not None and not self._refreshing.done():
                self._refreshing.cancel()  # a newer version's refresh replaces it (its result is older)
            self._refreshing, self._refreshing_for = asyncio.create_task(self.refresh()), snapshot.version
        refreshing, version = self._refreshing, self._refreshing_for
        try:
            if refreshing is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(refreshing), WAIT_ON_CHANGE_SECONDS)
        finally:
            self.version = max(self.version, version)

    async def refresh(self) -> None:
        """Read the metered use of the current day and month; on failure keep the last figures. Two reads
        may overlap (the periodic one, a config change's): the one started later wins."""
        self._reads += 1
        started = self._reads
        today, day_name, first, month_name = self.period(self.clock())
        try:
            rows = await UsageDaily.raw(SEED_QUERY, today, first, today)
        except Exception:
            log.exception("the quotas' metered usage could not be read; the last figures stay")
            return
        used: dict[tuple[str, ...], list[int]] = {}
        for row in rows:
            used[(str(row["consumer"]), str(row["api"]))] = [int(row["day"] or 0), int(row["month"] or 0)]
        # What this node counted and has not written yet (a batch leaves this list before it is written).
        for consumer, api, day, admitted in self.recorder.unflushed_admitted():
            if first <= day <= today:
                figures = used.setdefault((str(consumer), api), [0, 0])
                figures[1] += admitted
                if day == today:
                    figures[0] += admitted
        if started < self._applied:
            return  # a read begun before the figures already applied: older than them
        self._applied = started
        self.used = {key: (day, month) for key, (day, month) in used.items()}
        self.day_name, self.month_name = day_name, month_name
        self.generation += 1

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the quotas' metered usage failed")

    async def aclose(self) -> None:
        for task in (self._loop, self._refreshing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
