"""What a loop says while something it needs is away (the database, Redis): once, once a minute, and when
it ends. Its own module, importing nothing of the project: the snapshot, the worker and the logs use it."""

from __future__ import annotations

import logging
import sys
import time


class Trouble:
    """What a loop says while something it needs (the database, Redis) is away: the first failure with its
    traceback, then one line a minute while it lasts, and one when it ends, instead of a traceback every
    poll of every process. `since` (a time.time()) says since when, for health answers. Call `failed()`
    inside the `except` block."""

    REPEAT_SECONDS = 60.0

    def __init__(self, log: logging.Logger, what: str, first: str | None = None) -> None:
        self.log = log
        self.what = what
        self.first = first or f"{what} failed"
        self.since: float | None = None
        self.failures = 0
        self._said = 0.0

    def failed(self) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.since is None:
            self.since, self._said = time.time(), now
            self.log.exception(self.first)
        elif now - self._said >= self.REPEAT_SECONDS:
            self._said = now
            error = sys.exc_info()[1]
            self.log.warning(
                f"{self.what} still failing",
                extra={
                    "failures": self.failures,
                    "for_seconds": round(time.time() - self.since),
                    "error": f"{type(error).__name__}: {error}",
                },
            )

    def ok(self) -> None:
        if self.since is not None:
            self.log.warning(
                f"{self.what} works again",
                extra={"failures": self.failures, "after_seconds": round(time.time() - self.since)},
            )
            self.since, self.failures = None, 0
