"""Whether a part kept in Redis (limits, backend caps, the response cache) is running on its node's own state
while Redis is away; each change is said once in the log, not on every call."""

from __future__ import annotations

import logging
import time

# While Redis is away one call this often asks it again; the others use the node's own state at once. A Redis
# that hangs then costs one call a second UNIGATE_REDIS_TIMEOUT instead of every call, and one that is back
# is used again within this.
PROBE_SECONDS = 1.0


class RedisFallback:
    """Redis refusing, dropping or not answering within UNIGATE_REDIS_TIMEOUT (a frozen host, a partition)
    are one condition: the part falls back to its node, says so in one line, asks Redis again once a
    second (`away`), and comes back on the first call Redis answers."""

    def __init__(self, log: logging.Logger, lost: str, found: str) -> None:
        self.log = log
        self.lost_says = lost
        self.found_says = found
        self.degraded = False
        self._next_probe = 0.0

    def away(self) -> bool:
        """True: use the node's own state for this call without asking Redis; False: ask Redis."""
        if not self.degraded:
            return False
        now = time.monotonic()
        if now < self._next_probe:
            return True
        # This call is the probe; the calls meanwhile do not wait for it.
        self._next_probe = now + PROBE_SECONDS
        return False

    def lost(self, error: BaseException) -> None:
        self._next_probe = time.monotonic() + PROBE_SECONDS
        if not self.degraded:
            self.degraded = True
            # One line naming the cause: a traceback of redis-py's internals tells an operator nothing more.
            self.log.warning("%s (%s: %s)", self.lost_says, type(error).__name__, error)

    def found(self) -> None:
        if self.degraded:
            self.degraded = False
            self.log.warning(self.found_says)
