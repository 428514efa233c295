"""A SIGTERM that reaches a worker while its event loop is between two runs (granian runs it once for the
ASGI startup, then again to serve) stops the worker all the same: uvloop closes its signal pipe between
runs, and left alone it keeps such a signal until another one comes, so the node waited forever."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import uvloop
    from gateway.signals import keep_signals_between_runs

    loop = uvloop.new_event_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)

    async def startup():  # what the lifespan does, inside the first run
        if sys.argv[1] == "kept":
            keep_signals_between_runs(asyncio.get_running_loop())

    loop.run_until_complete(startup())
    os.kill(os.getpid(), signal.SIGTERM)  # between the two runs, as when granian builds its worker
    try:
        loop.run_until_complete(asyncio.wait_for(stopped.wait(), 2))
    except TimeoutError:
        print("lost")
    else:
        print("stopped")
    """
)


@pytest.mark.parametrize(("mode", "outcome"), [("kept", "stopped"), ("bare", "lost")])
def test_a_sigterm_between_two_loop_runs_still_stops_the_worker(mode: str, outcome: str) -> None:
    # "bare" shows the uvloop behaviour the helper is for; should uvloop fix it, this case tells.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == outcome
