"""Whether a part kept in Redis (limits, backend caps, the response cache) is running on its node's own state
while Redis is away; each change is said once in the log, not on every call."""

from __future__ import annotations

import logging


class RedisFallback:
    def __init__(self, log: logging.Logger, lost: str, found: str) -> None:
        self.log = log
        self.lost_says = lost
        self.found_says = found
        self.degraded = False

    def lost(self) -> None:
        if not self.degraded:
            self.degraded = True
            self.log.warning(self.lost_says, exc_info=True)

    def found(self) -> None:
        if self.degraded:
            self.degraded = False
            self.log.warning(self.found_says)
