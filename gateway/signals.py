"""Worker signals that uvloop would otherwise lose.

granian runs a worker's event loop twice: once for the ASGI startup, then again to serve. Between two runs
uvloop closes its signal pipe; a SIGTERM arriving then (a deploy stopping the node just as a worker
finishes starting) is noted but only acted on when another signal comes, so the worker never stops and
the node waits for it forever. Stdlib asyncio keeps its pipe between runs and does not need this.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


def keep_signals_between_runs(
    loop: asyncio.AbstractEventLoop, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Called inside the loop after its signal handlers are set: a signal that comes while the loop is not
    running is raised again as soon as it runs, when the loop hears it."""
    if (
        not type(loop).__module__.startswith("uvloop")
        or threading.current_thread() is not threading.main_thread()
    ):
        return
    for sig in signals:
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue

        def relay(signum: int, frame: FrameType | None, handler: Callable[..., Any] = handler) -> None:
            if loop.is_running():
                handler(signum, frame)
            else:
                loop.call_soon(signal.raise_signal, signum)

        signal.signal(sig, relay)
