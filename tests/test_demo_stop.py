"""`unigate demo` (what `make demo` runs) stops everything it started when it is told to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import DEMO_PORTS
from tests.services import free_port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stops", "started_ignoring_sigint"),
    [
        ([signal.SIGTERM], False),
        ([signal.SIGINT], False),
        ([signal.SIGINT, signal.SIGINT], False),  # an impatient second Ctrl-C while it is stopping
        ([signal.SIGINT], True),  # `unigate demo &` from a script: the shell starts it ignoring SIGINT
    ],
    ids=["SIGTERM", "Ctrl-C", "Ctrl-C twice", "kill -INT after a background start"],
)
def test_stopping_the_demo_leaves_nothing_running(
    tmp_path: Path, stops: list[signal.Signals], started_ignoring_sigint: bool
) -> None:
    if any(_listening(port) for port in DEMO_PORTS.values()):
        pytest.skip("a demo is already running on this machine (its simulators hold the demo ports)")
    port = free_port()
    env = {
        **os.environ,
        "UNIGATE_VAR_DIR": str(tmp_path),
        "UNIGATE_PORT": str(port),
        "UNIGATE_LOG_LEVEL": "WARNING",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_ignore_sigint if started_ignoring_sigint else None,
    )
    try:
        assert demo.stdout is not None
        seen = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            seen.append(line)
            if "Press Ctrl-C to stop." in line or not line:
                break
        assert "Press Ctrl-C to stop." in seen[-1], "".join(seen[-30:])
        assert _listening(port) and all(_listening(p) for p in DEMO_PORTS.values())
        for stop in stops:
            demo.send_signal(stop)
            time.sleep(0.3)
        assert demo.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_listening(port) or any(map(_listening, DEMO_PORTS.values()))):
            time.sleep(0.2)
        assert not _listening(port), "the gateway is still serving"
        assert not any(_listening(p) for p in DEMO_PORTS.values()), "a simulator is still serving"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        _kill_everything_using(tmp_path)


def _kill_everything_using(var_dir: Path) -> None:
    """What a failed stop left behind (the children run in sessions of their own), found by its var dir."""
    marker = f"UNIGATE_VAR_DIR={var_dir}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            pass
