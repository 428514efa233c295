"""Whether a part kept in Redis (limits, backend caps, the response cache) is running on its node's own state
while Redis is away; each change is said once in the log, not on every call."""

from __future__ import annotations

import logging


class RedisFallback:
    """Redis refusing, dropping or not answering within UNIGATE_REDIS_TIMEOUT (a frozen host, a partition)
    are one condition: the part falls back to its node, says so in one line, and comes back on the first
    call Redis answers."""

    def __init__(self, log: logging.Logger, lost: str, found: str) -> None:
        self.log = log
        self.lost_says = lost
        self.found_says = found
        self.degraded = False

    def lost(self, error: BaseException) -> None:
        if not self.degraded:
            self.degraded = True
            # One line naming the cause: a traceback of redis-py's internals tells an operator nothing more.
            self.log.warning("%s (%s: %s)", self.lost_says, type(error).__name__, error)

    def found(self) -> None:
        if self.degraded:
            self.degraded = False
            self.log.warning(self.found_says)
