"""JSON logs, one object a line on stderr, written by a background thread so a request never waits on a
log write; granian's own lines and Python's warnings come out the same way."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import multiprocessing.util
import os
import queue
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from policies import pii

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# Terminal colours some libraries put in their messages (Piccolo's warnings): noise in a log line.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "\x1b" in message:
            message = _ANSI.sub("", message)
        # Personal data (phone, mobile, ID card numbers, addresses) never reaches a log line.
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": pii.mask_text(message),
        }
        entry.update(
            {
                k: pii.mask_json(v) if isinstance(v, dict | list) else pii.mask_field(k, v)
                for k, v in record.__dict__.items()
                if k not in _STANDARD
            }
        )
        if record.exc_info:
            entry["exception"] = pii.mask_text(self.formatException(record.exc_info))
        return msgspec.json.encode(entry, enc_hook=str).decode()


_listener: logging.handlers.QueueListener | None = None
_configured_in: int | None = None  # the pid that configured logging: a forked child configures anew


def configure(level: str = "INFO", *, background: bool = True) -> None:
    """Route every log record to one JSON stream handler on stderr: through a queue and a thread of its
    own (`background`, for a process that serves requests), or written at once (a process that only
    supervises others, such as granian's main process, which forks its workers: no thread to fork)."""
    global _listener, _configured_in
    root = logging.getLogger()
    root.setLevel(level)
    if _configured_in == os.getpid() and (_listener is not None or not background):
        return
    logging.captureWarnings(True)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter())
    _configured_in = os.getpid()
    if not background:
        root.handlers[:] = [stream]
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    _listener.start()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    # Whatever is still queued is written before the process ends. A granian worker is a multiprocessing
    # child, which leaves through os._exit and runs multiprocessing's finalizers, never atexit's.
    atexit.register(_drain)
    multiprocessing.util.Finalize(None, _drain, exitpriority=100)


def _drain() -> None:
    global _listener
    listener, _listener = _listener, None
    if listener is not None and _configured_in == os.getpid():
        listener.stop()


def granian_config() -> dict[str, Any]:
    """granian's `log_dictconfig`: its own lines (workers spawned, stopped, failed) as JSON on stderr too."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"console": handler, "access": handler},
    }


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
