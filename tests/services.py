"""Pytest plugin: real redis-server and PostgreSQL on free 127.0.0.1 ports, and `run_process`
to start any server (a gateway, a simulator) as a real process for the length of a test."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Service:
    """A server a fixture started: where to reach it and the pid that stops it."""

    url: str
    port: int
    pid: int
    log_path: Path


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it, so parallel runs don't collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = START_TIMEOUT) -> None:
    """Return once something accepts TCP connections on host:port; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not _port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _http_ready(url: str) -> bool:
    try:
        # Any answer below 500 means the server is routing requests, even a 404 on a bare path.
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group the child leads (its workers too), then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=STOP_TIMEOUT)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


@contextmanager
def run_process(
    cmd: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_url: str | None = None,
    ready_port: int | None = None,
    cwd: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` in its own process group until the block ends; ready when `ready_url` answers
    over HTTP, or `ready_port` accepts TCP. `env` is laid over this process's environment.
    stdout and stderr go to `log_path`; a failed start raises with the log's tail."""
    if (ready_url is None) == (ready_port is None):
        raise ValueError("give exactly one of ready_url or ready_port")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(cmd),
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not (_http_ready(ready_url) if ready_url else _port_open(HOST, ready_port or 0)):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{cmd[0]} exited with {proc.returncode} before it was ready; "
                    f"last lines of {log_path}:\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{cmd[0]} not ready at {ready_url or ready_port} after {timeout:.0f}s; "
                    f"last lines of {log_path}:\n{log_tail(log_path)}"
                )
            time.sleep(0.05)
        yield proc
    finally:
        _stop_group(proc)


def require_binary(name: str, package: str, candidates: Sequence[str] = ()) -> str:
    """The path of a server binary; fail (never skip) naming the Debian package that provides it."""
    for path in (shutil.which(name), *candidates):
        if path and os.access(path, os.X_OK):
            return path
    pytest.fail(
        f"{name} is not installed: apt-get install -y {package} (`make test` installs it)",
        pytrace=False,
    )


def _alive(pid: int) -> bool:
    """A daemon's parent is init, which may reap it late: an exited zombie counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stop a daemon that is not our child (it forked away) by its pid, SIGKILL if it lingers."""
    for signum in (sig, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        if _wait_pid_gone(pid, STOP_TIMEOUT):
            return


def _pid_in(path: Path) -> int | None:
    try:
        # postmaster.pid holds more lines after the pid; redis's pidfile only the pid.
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _read_pidfile(path: Path, timeout: float = START_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while (pid := _pid_in(path)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no pid in {path} after {timeout:.0f}s")
        time.sleep(0.05)
    return pid


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = require_binary("redis-server", "redis-server")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    pidfile, log_path = workdir / "redis.pid", workdir / "redis.log"
    subprocess.run(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(pidfile), "--logfile", str(log_path),
         "--dir", str(workdir)],
        check=True,
    )  # fmt: skip
    pid = 0
    try:
        pid = _read_pidfile(pidfile)
        url = f"redis://{HOST}:{port}/0"
        _wait_for_ping(url, log_path)
        yield Service(url=url, port=port, pid=pid, log_path=log_path)
    finally:
        if pid:
            stop_pid(pid)


def _wait_for_ping(url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer PING:\n{log_tail(log_path)}")
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_server: Service) -> str:
    """The session's Redis, emptied, so no test sees another's counters or queues."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


def postgres_bindir() -> Path:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.insert(0, found)
    for bindir in candidates:
        if (Path(bindir) / "initdb").exists() and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir)
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: "
        "apt-get install -y postgresql (`make test` installs it)",
        pytrace=False,
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root, so root runs the server as the `postgres` user."""
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root but there is no `postgres` user: apt-get install -y postgresql",
            pytrace=False,
        )
    return [require_binary("runuser", "util-linux"), "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Service]:
    bindir = postgres_bindir()
    # Not pytest's tmp_path: its parents are root-only (0700), where the postgres user can't reach.
    workdir = Path(tempfile.mkdtemp(prefix="unigate-pg-", dir="/tmp"))
    data, log_path = workdir / "data", workdir / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    options = f"-p {port} -k {workdir} -c listen_addresses={HOST} -c fsync=off"
    try:
        _run_or_fail(
            _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                          "-E", "UTF8", "--locale=C", "--no-sync"]),
            log_path,
        )  # fmt: skip
        _run_or_fail(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                          "-l", str(log_path), "-w", "-t", str(int(START_TIMEOUT)), "start"]),
            log_path,
        )  # fmt: skip
        _run_or_fail(
            [str(bindir / "createdb"), "-h", HOST, "-p", str(port), "-U", "postgres", "unigate_test"],
            log_path,
        )
        yield Service(
            url=f"postgres://postgres@{HOST}:{port}/unigate_test",
            port=port,
            pid=_read_pidfile(data / "postmaster.pid"),
            log_path=log_path,
        )
    finally:
        # Read here, not after start: a start that timed out may still have left a server running.
        if pid := _pid_in(data / "postmaster.pid"):
            stop_pid(pid, signal.SIGINT)  # SIGINT is PostgreSQL's "fast" shutdown
        shutil.rmtree(workdir, ignore_errors=True)


def _run_or_fail(cmd: list[str], log_path: Path) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT * 2)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{log_tail(log_path)}",
            pytrace=False,
        )


def create_database(server: Service) -> str:
    """A new, empty database on `server`, so tests never see each other's rows; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    createdb = str(postgres_bindir() / "createdb")
    _run_or_fail([createdb, "-h", HOST, "-p", str(server.port), "-U", "postgres", name], server.log_path)
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def postgres_url(postgres_server: Service) -> str:
    """A database of its own for one test."""
    return create_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own for one test, once on each engine the store runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database shared by one module's tests, once on each engine the store runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('module-sqlite') / 'store.db'}"
    return create_database(request.getfixturevalue("postgres_server"))


@contextmanager
def own_redis(log_dir: Path) -> Iterator[tuple[str, int]]:
    """A redis-server of one test alone (freezing or stopping it affects nobody else): its URL and pid."""
    port = free_port()
    command = [require_binary("redis-server", "redis-server"), "--port", str(port), "--bind", HOST,
               "--save", "", "--appendonly", "no"]  # fmt: skip
    with run_process(command, log_path=log_dir / "redis.log", ready_port=port) as proc:
        yield f"redis://{HOST}:{port}/0", proc.pid


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """A server stopped as a hung host is (SIGSTOP): the kernel still accepts connections, nothing answers;
    resumed (SIGCONT) when the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def log_entries(path: Path) -> list[dict[str, Any]]:
    """A process's log as our JSON lines (gateway/logs.py); a line that is not one is kept as its message."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            entries.append({"message": line})  # not a log line of ours: kept, so a traceback still shows
    return entries


def said(path: Path, text: str) -> list[dict[str, Any]]:
    """The entries of a process's log whose message holds `text`."""
    return [entry for entry in log_entries(path) if text in str(entry.get("message", ""))]
