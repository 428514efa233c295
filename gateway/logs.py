"""JSON logs, written by a background thread so a request never waits on a log write."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from policies import pii

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # Personal data (phone, mobile, ID card numbers, addresses) never reaches a log line.
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": pii.mask_text(record.getMessage()),
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


def configure(level: str = "INFO") -> None:
    """Route every log record through a queue to one JSON stream handler on stderr."""
    global _listener
    if _listener is not None:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter())
    _listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    _listener.start()
    atexit.register(_listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)
