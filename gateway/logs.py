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
