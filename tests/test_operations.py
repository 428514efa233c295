"""unigate as an operator runs it: real `unigate migrate` and `unigate serve` processes, started in the
wrong order, run twice at once, killed and stopped, and the JSON lines they write while at it."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import ClientSession, web
from cryptography.fernet import Fernet

from gateway import logs
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.settings import load_settings
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.migrate import known_migrations
from tests.conftest import SECRET_KEY, Simulators, _LoopThread, _serve, bound_store, gateway_env, unigate
from tests.services import Service, create_database, free_port, log_tail

ROOT = Path(__file__).resolve().parent.parent
UNIGATE = [sys.executable, "-m", "gateway.cli"]
STOP_TIMEOUT = 30


def _start(env: dict[str, str], log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*UNIGATE, *args],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is still running at its end is stopped, group and all."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _json_lines(log_path: Path) -> list[dict[str, Any]]:
    """Every line the process wrote, each of which must be one JSON object."""
    entries = []
    for number, line in enumerate(log_path.read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        assert isinstance(entry, dict), f"line {number} of {log_path.name} is not a JSON object: {line!r}"
        entries.append(entry)
    return entries


def _wait_for(
    check: Any, what: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60
) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}:\n{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:.0f}s:\n{log_tail(log_path)}")
        time.sleep(0.05)
    return found


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _two_workers(pid: int) -> set[int]:
    kids = _children(pid)
    return kids if len(kids) == 2 else set()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _applied(env: dict[str, str]) -> list[str]:
    settings = load_settings(env)
    if settings.is_postgres:
        import asyncpg

        async def names() -> list[str]:
            connection = await asyncpg.connect(settings.database_url)
            try:
                return [row["name"] for row in await connection.fetch("SELECT name FROM migration")]
            finally:
                await connection.close()

        return asyncio.run(names())
    with sqlite3.connect(settings.sqlite_path) as db:
        return [name for (name,) in db.execute("SELECT name FROM migration")]


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of a node whose database exists but was never migrated."""
    if request.param == "sqlite":
        return gateway_env(tmp_path)
    return gateway_env(tmp_path, DATABASE_URL=create_database(request.getfixturevalue("postgres_server")))


def test_nodes_migrating_at_once_take_turns_and_apply_each_migration_once(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    """Every container's start script runs `unigate migrate`: three at once all succeed, one does the work."""
    runs = [
        subprocess.Popen(
            [*UNIGATE, "migrate"],
            env={**os.environ, **fresh_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    assert [code for code, _, _ in answers] == [0, 0, 0], answers
    assert not any("Traceback" in err for _, _, err in answers)
    said = sorted(out.split(":")[0] for _, out, _ in answers)
    assert said == [
        "database migrated",
        "database up to date, nothing to apply",
        "database up to date, nothing to apply",
    ]
    assert sorted(_applied(fresh_env)) == list(known_migrations())  # each once, none missing


def test_a_database_url_naming_no_database_is_one_line(postgres_server: Service, tmp_path: Path) -> None:
    url = postgres_server.url.rsplit("/", 1)[0] + "/no_such_database"
    answer = unigate(gateway_env(tmp_path, DATABASE_URL=url), "migrate", check=False)
    assert (answer.returncode, answer.stderr.strip().splitlines()[-1]) == (
        1,
        'unigate: cannot connect: database "no_such_database" does not exist',
    )
    assert "Traceback" not in answer.stderr


def test_a_node_started_before_migrations_waits_for_them_then_serves(
    fresh_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Start order: the gateway comes up before `unigate migrate` has run. It says what it waits for (in
    JSON, at the level asked for) and serves once the database is ready, instead of failing each worker."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**fresh_env, "UNIGATE_START_TIMEOUT": "120", "UNIGATE_LOG_LEVEL": "WARNING"}
    node = _start(env, log_path, "serve", "--port", str(port), "--workers", "2")
    processes.append(node)
    _wait_for(
        lambda: "run `unigate migrate`" in log_path.read_text(), "word of missing migrations", node, log_path
    )
    assert not _answers(f"http://127.0.0.1:{port}/healthz")  # not serving a database it cannot use
    unigate(fresh_env, "migrate")
    _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), "readiness", node, log_path)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=STOP_TIMEOUT) == 0
    entries = _json_lines(log_path)
    assert {entry["level"] for entry in entries} <= {"WARNING", "ERROR", "CRITICAL"}  # INFO was not asked for
    waited = [entry["message"] for entry in entries if entry["message"].startswith("the database")]
    assert waited[0].startswith(f"the database lacks {len(known_migrations())} of the ")
    assert all(message.endswith("run `unigate migrate`") for message in waited)


@pytest.mark.parametrize("database", ["unmigrated", "not listening", "missing"])
def test_a_node_that_cannot_use_its_database_gives_up_in_one_line(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**gateway_env(tmp_path), "UNIGATE_START_TIMEOUT": "1"}
    expected = "run `unigate migrate`; gave up after 1s"
    if database != "unmigrated":
        server: Service = request.getfixturevalue("postgres_server")
        base = server.url.rsplit("/", 1)[0]
        if database == "not listening":
            env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{free_port()}/unigate"
            expected = "the database does not answer"
        else:  # waiting cannot mend a wrong name: said at once
            env["DATABASE_URL"], env["UNIGATE_START_TIMEOUT"] = f"{base}/no_such_database", "600"
            expected = 'the database refuses this node: database "no_such_database" does not exist'
    log_path = tmp_path / "serve.log"
    node = _start(env, log_path, "serve", "--port", str(free_port()))
    assert node.wait(timeout=120) == 1
    last = _json_lines(log_path)[-1]
    assert last["level"] == "ERROR" and expected in last["message"], last
    assert "Traceback" not in log_path.read_text()


@pytest.mark.parametrize("variable", ["UNIGATE_LOG_LEVEL", "UNIGATE_START_TIMEOUT"])
def test_a_level_or_timeout_that_cannot_be_used_is_named_at_once(variable: str, tmp_path: Path) -> None:
    value = {"UNIGATE_LOG_LEVEL": "verbose", "UNIGATE_START_TIMEOUT": "-1"}[variable]
    answer = unigate(
        {**gateway_env(tmp_path), variable: value}, "serve", "--port", str(free_port()), check=False
    )
    assert answer.returncode == 2
    assert answer.stderr.startswith(f"unigate: {variable}: ") and "Traceback" not in answer.stderr


ADD_CONNECTION = ("connections", "add", "erp", "--system", "kuaidi100", "--base-url", "http://127.0.0.1:9")
ADD_CONNECTION += ("--credential", "customer=c", "--credential", "key=k")


@pytest.fixture
def migrated_env(tmp_path: Path) -> dict[str, str]:
    env = gateway_env(tmp_path)
    unigate(env, "migrate")
    return env


def test_a_killed_worker_is_replaced_while_the_node_serves_on(
    migrated_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """The OOM killer takes one worker: the node replaces it rather than stopping whole."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    node = _start(migrated_env, log_path, "serve", "--port", str(port), "--workers", "2")
    processes.append(node)
    url = f"http://127.0.0.1:{port}/healthz"
    workers = _wait_for(lambda: _answers(url) and _two_workers(node.pid), "2 workers", node, log_path)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    replaced = _wait_for(
        lambda: (kids := _two_workers(node.pid)) and victim not in kids and kids,
        "a new worker",
        node,
        log_path,
    )
    _wait_for(lambda: _answers(url), "an answer after the respawn", node, log_path)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=STOP_TIMEOUT) == 0
    assert not any(_alive(pid) for pid in replaced)
    messages = [entry["message"] for entry in _json_lines(log_path)]
    assert "Unexpected exit from worker-1" in messages or "Unexpected exit from worker-2" in messages


def test_a_node_stopped_while_its_workers_start_exits_at_once(
    migrated_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """`docker stop` a moment after `docker start`: the workers are still loading the app."""
    log_path = tmp_path / "serve.log"
    node = _start(migrated_env, log_path, "serve", "--port", str(free_port()), "--workers", "2")
    processes.append(node)
    workers = _wait_for(lambda: _two_workers(node.pid), "2 workers", node, log_path)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=STOP_TIMEOUT) == 0
    assert not any(_alive(pid) for pid in workers)


def test_a_node_whose_secret_key_opens_no_credentials_says_so_in_one_line(
    migrated_env: dict[str, str], tmp_path: Path
) -> None:
    """A node given another UNIGATE_SECRET_KEY than the one that sealed the credentials."""
    unigate(migrated_env, *ADD_CONNECTION)
    other = Fernet.generate_key().decode()
    log_path = tmp_path / "serve.log"
    node = _start(
        {**migrated_env, "UNIGATE_SECRET_KEY": other}, log_path, "serve", "--port", str(free_port())
    )
    assert node.wait(timeout=120) == 1
    last = _json_lines(log_path)[-1]
    assert (
        last["level"] == "ERROR"
        and "UNIGATE_SECRET_KEY is not the key this database is sealed with" in (last["message"])
    )
    assert "Traceback" not in log_path.read_text() and other not in log_path.read_text()


def test_a_node_on_a_database_a_newer_unigate_migrated_serves_and_says_so(
    migrated_env: dict[str, str], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """A rolling upgrade: the new release migrated first; the old nodes keep serving until replaced."""
    newer = "2999-01-01T00:00:00:000000"
    with sqlite3.connect(load_settings(migrated_env).sqlite_path) as db:
        db.execute(
            "INSERT INTO migration (name, app_name, ran_on) VALUES (?, 'unigate', '2999-01-01')", (newer,)
        )
    assert "1 migrations this unigate does not know" in unigate(migrated_env, "migrate").stdout
    port = free_port()
    log_path = tmp_path / "serve.log"
    node = _start(migrated_env, log_path, "serve", "--port", str(port))
    processes.append(node)
    _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/readyz"), "readiness", node, log_path)
    node.send_signal(signal.SIGTERM)
    assert node.wait(timeout=STOP_TIMEOUT) == 0
    warned = [entry for entry in _json_lines(log_path) if entry.get("unknown")]
    assert warned and warned[0]["unknown"] == [newer] and warned[0]["level"] == "WARNING"


class _HeldBackend:
    """A Wangdiantong backend that holds every call until released, counting the calls it holds."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.arrived = 0
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.forward)

    async def forward(self, request: web.Request) -> web.Response:
        self.arrived += 1
        await self.release.wait()
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                self.target + request.path_qs,
                data=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            ) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )


@dataclass
class HeldNode:
    """A 2-worker node over SQLite whose application calls `wdt-held` (a backend holding every call until
    released) by default, and `wdt-quick` (the simulator itself) when asked."""

    node: subprocess.Popen[bytes]
    url: str
    key: str
    consumer: int
    backend: _HeldBackend
    loop: _LoopThread
    env: dict[str, str]
    log_path: Path


@pytest.fixture
async def held_node(
    simulators: Simulators,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    request: pytest.FixtureRequest,
) -> AsyncIterator[HeldNode]:
    marker = request.node.get_closest_marker("node_env")  # settings a test gives its node
    env = {
        **gateway_env(tmp_path),
        "UNIGATE_LOG_LEVEL": "INFO",
        "UNIGATE_METERING_FLUSH_SECONDS": "600",
        "UNIGATE_UPSTREAM_TIMEOUT": "60",  # the backend holds calls until the node is stopping
        **(marker.kwargs if marker else {}),
    }
    unigate(env, "migrate")
    loop = _LoopThread()
    backend = _HeldBackend(simulators.wdt.url)
    runner, backend_url = loop.run(_serve(backend.app))
    try:
        async with bound_store(env):
            for name, url in (("wdt-held", backend_url), ("wdt-quick", simulators.wdt.url)):
                await manage.put_connection(
                    Vault(SECRET_KEY),
                    name=name,
                    system="wangdiantong",
                    base_url=url,
                    credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
                )
            consumer = await manage.create_consumer(
                "deploy-app", {"*": "wdt-held"}, grants=["wdt-quick"], by_admin=True
            )
            await policy_manage.ensure_plan("default", {"rate_limits": {"per_second": 1000}})
            await policy_manage.ensure_subscriptions(consumer, "default")
            key = (await manage.create_key(consumer, name="ops")).key
        port = free_port()
        log_path = tmp_path / "serve.log"
        node = _start(env, log_path, "serve", "--port", str(port), "--workers", "2")
        processes.append(node)
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(
            _wait_for,
            lambda: _answers(f"{url}/healthz") and _two_workers(node.pid),
            "readiness",
            node,
            log_path,
        )
        yield HeldNode(node, url, key, consumer, backend, loop, env, log_path)
    finally:
        loop.loop.call_soon_threadsafe(backend.release.set)
        loop.run(runner.cleanup())
        loop.stop()


async def test_sigterm_lets_requests_in_flight_finish_and_writes_their_usage(held_node: HeldNode) -> None:
    """A deploy stops a node with SIGTERM while it has requests in flight: each is answered, its usage
    counted and its access line written before the node exits 0, leaving no worker behind."""
    node, log_path, backend = held_node.node, held_node.log_path, held_node.backend
    workers = _children(node.pid)
    calls = 6
    async with httpx.AsyncClient(
        base_url=held_node.url, headers={"Authorization": f"Bearer {held_node.key}"}, timeout=60
    ) as http:
        flying = [asyncio.create_task(http.get("/v1/stockouts", params={"limit": 2})) for _ in range(calls)]
        await asyncio.to_thread(_wait_for, lambda: backend.arrived >= calls, "calls held", node, log_path)
        node.send_signal(signal.SIGTERM)
        await asyncio.to_thread(
            _wait_for, lambda: "Shutting down granian" in log_path.read_text(), "shutdown", node, log_path
        )
        held_node.loop.loop.call_soon_threadsafe(backend.release.set)
        answers = await asyncio.gather(*flying)
    assert [answer.status_code for answer in answers] == [200] * calls
    assert await asyncio.to_thread(node.wait, STOP_TIMEOUT) == 0
    assert not any(_alive(pid) for pid in workers)
    text = log_path.read_text()
    assert "Traceback" not in text and held_node.key not in text
    logged = {
        entry.get("request_id") for entry in _json_lines(log_path) if entry["logger"] == "unigate.access"
    }
    assert {answer.headers["x-request-id"] for answer in answers} <= logged
    with sqlite3.connect(load_settings(held_node.env).sqlite_path) as db:
        (counted,) = db.execute(
            "SELECT SUM(calls) FROM unigate_usage_daily WHERE consumer = ?", (held_node.consumer,)
        ).fetchone()
    assert counted == calls  # written by the flush at shutdown: the periodic one is 10 minutes away


@pytest.mark.node_env(UNIGATE_STOP_TIMEOUT="2")
async def test_a_worker_that_will_not_stop_is_killed_after_the_stop_timeout(held_node: HeldNode) -> None:
    """A request that never ends (here a backend that never answers, within a 60 s upstream timeout) must
    not hold a deploy for ever: after UNIGATE_STOP_TIMEOUT the node kills that worker, says so, and exits."""
    node, log_path, backend = held_node.node, held_node.log_path, held_node.backend
    workers = _children(node.pid)
    async with httpx.AsyncClient(
        base_url=held_node.url, headers={"Authorization": f"Bearer {held_node.key}"}, timeout=60
    ) as http:
        stuck = asyncio.create_task(http.get("/v1/stockouts", params={"limit": 2}))
        await asyncio.to_thread(_wait_for, lambda: backend.arrived >= 1, "call held", node, log_path)
        node.send_signal(signal.SIGTERM)
        await asyncio.to_thread(node.wait, STOP_TIMEOUT)  # well before the backend or the client gives up
        with pytest.raises(httpx.TransportError):
            await stuck
    assert not any(_alive(pid) for pid in workers)
    killed = [entry for entry in _json_lines(log_path) if "refused to gracefully stop" in entry["message"]]
    assert len(killed) == 1, log_path.read_text()


def _breaker_pids(metrics: str) -> set[int]:
    return {
        int(match) for match in re.findall(r'^unigate_breaker_state\{[^}]*pid="(\d+)"', metrics, re.MULTILINE)
    }


async def test_a_killed_worker_leaves_no_breaker_states_behind(held_node: HeldNode) -> None:
    """Breaker states are per worker (label pid); those of a worker the OOM killer took must not be shown
    as live for the rest of the node's life, only those of the workers serving."""
    node, log_path = held_node.node, held_node.log_path
    async with httpx.AsyncClient(
        base_url=held_node.url,
        headers={"Authorization": f"Bearer {held_node.key}", "X-Connection": "wdt-quick"},
        timeout=30,
    ) as http:

        async def both_workers_have_breakers() -> set[int]:
            # A new connection each time: a kept-alive one stays with the worker that accepted it.
            await http.get("/v1/stockouts", params={"limit": 1}, headers={"Connection": "close"})
            pids = _breaker_pids((await http.get("/metrics")).text)
            return pids if len(pids) == 2 else set()

        pids: set[int] = set()
        for _ in range(100):  # each call lands on either worker
            if pids := await both_workers_have_breakers():
                break
        assert pids == _children(node.pid), pids
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        await asyncio.to_thread(
            _wait_for,
            lambda: (kids := _two_workers(node.pid)) and victim not in kids,
            "a new worker",
            node,
            log_path,
        )

        async def victim_gone() -> bool:
            answer = await http.get("/metrics")
            return answer.status_code == 200 and victim not in _breaker_pids(answer.text)

        deadline = time.monotonic() + 15
        while not await victim_gone():
            assert time.monotonic() < deadline, "the killed worker's breaker states are still shown"
            await asyncio.sleep(0.2)


def _requests_counted(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("unigate_requests_total{")
    )


async def test_metrics_of_a_node_count_the_requests_of_all_its_workers(held_node: HeldNode) -> None:
    """Prometheus scrapes one worker at a time; each answer must be the node's, not that worker's share."""
    async with httpx.AsyncClient(
        base_url=held_node.url,
        headers={"Authorization": f"Bearer {held_node.key}", "X-Connection": "wdt-quick"},
        timeout=60,
    ) as http:
        calls = 8
        answers = await asyncio.gather(
            *(http.get("/v1/stockouts", params={"limit": 1}) for _ in range(calls))
        )
        assert [answer.status_code for answer in answers] == [200] * calls

        # A connection each, as Prometheus opens them, so the scrapes land on either worker.
        async def scrape() -> str:
            return (await http.get("/metrics", headers={"Connection": "close"})).text

        # A request is counted as its answer goes out: the last one may still be on its way.
        for _ in range(600):
            if _requests_counted(await scrape()) >= calls:
                break
        scrapes = [await scrape() for _ in range(6)]
    assert [_requests_counted(scrape) for scrape in scrapes] == [calls] * 6
    # Breakers are per worker: in the node's answer each carries the pid of the worker it lives in.
    assert all(re.search(r'^unigate_breaker_state\{[^}]*pid="\d+"', scrape, re.M) for scrape in scrapes)


def _log_and_return(count: int) -> None:
    logs.configure("INFO")
    for number in range(count):
        logging.getLogger("unigate.test").info("line %d", number)


def test_lines_still_queued_when_a_worker_process_ends_are_written(capfd: pytest.CaptureFixture[str]) -> None:
    """A granian worker is a multiprocessing child, which ends without running atexit: the lines its log
    thread had not written yet (the last requests' access lines, a failed final flush) must not vanish."""
    child = multiprocessing.get_context("fork").Process(target=_log_and_return, args=(500,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    written = [line for line in capfd.readouterr().err.splitlines() if '"logger":"unigate.test"' in line]
    assert len(written) == 500


def test_the_readme_names_every_setting_with_its_real_default() -> None:
    """The configuration table is what an operator reads: each variable settings.py reads is in it, and
    each default it states is the one a node gets with the variable unset."""
    source = (ROOT / "gateway" / "settings.py").read_text()
    variables = set(re.findall(r'"((?:UNIGATE_[A-Z_]+)|DATABASE_URL|REDIS_URL)"', source))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    documented: dict[str, str] = {}
    for names, default in rows:
        named = re.findall(r"`([A-Z_*]+)`", names)
        stated = re.findall(r"`([^`]*)`", default)
        for index, name in enumerate(named):
            # A row of several variables gives each its own default, or one for all.
            documented[name] = stated[index] if len(stated) == len(named) else (stated[0] if stated else "")
    missing = {
        name
        for name in variables
        if name not in documented
        and not any(pattern.endswith("*") and name.startswith(pattern[:-1]) for pattern in documented)
    }
    assert not missing, f"settings the README does not document: {sorted(missing)}"
    defaults = load_settings({"UNIGATE_SECRET_KEY": SECRET_KEY})
    field_of = {
        "DATABASE_URL": "database_url",
        "UNIGATE_HOST": "host",
        "UNIGATE_PORT": "port",
        "UNIGATE_WORKERS": "workers",
        "UNIGATE_LOG_LEVEL": "log_level",
        "UNIGATE_START_TIMEOUT": "start_timeout_seconds",
        "UNIGATE_CONFIG_POLL_SECONDS": "config_poll_seconds",
        "UNIGATE_UPSTREAM_TIMEOUT": "upstream_timeout_seconds",
        "UNIGATE_UPSTREAM_RETRIES": "upstream_retries",
        "UNIGATE_VAR_DIR": "var_dir",
        "UNIGATE_DEFAULT_LOCALE": "default_locale",
        "UNIGATE_SIGNUP_APPROVAL": "signup_approval",
        "UNIGATE_COOKIE_SECURE": "cookie_secure",
        "UNIGATE_QUOTA_TIMEZONE": "quota_timezone",
        "UNIGATE_USAGE_TIMEZONE": "usage_timezone",
        "UNIGATE_TOKEN_TTL": "token_ttl_seconds",
        "UNIGATE_TOKEN_ISSUER": "token_issuer",
        "UNIGATE_MAX_BODY_BYTES": "max_body_bytes",
        "UNIGATE_ADMISSION_MAX_IN_FLIGHT": "admission_max_in_flight",
        "UNIGATE_ADMISSION_QUEUE": "admission_queue",
        "UNIGATE_ADMISSION_MAX_WAIT": "admission_max_wait_seconds",
        "UNIGATE_CACHE_MAX_ENTRIES": "cache_max_entries",
        "UNIGATE_METERING_FLUSH_SECONDS": "metering_flush_seconds",
        "UNIGATE_REQUEST_SAMPLES": "request_samples_per_consumer",
        "UNIGATE_WORKER_CONCURRENCY": "worker_concurrency",
        "UNIGATE_REDIS_TIMEOUT": "redis_timeout_seconds",
    }
    wrong = {}
    for name, field in field_of.items():
        actual = getattr(defaults, field)
        if isinstance(actual, bool) or (isinstance(actual, float) and actual.is_integer()):
            actual = int(actual)
        if documented.get(name) and documented[name] != str(actual):  # "see docs/..." states no value
            wrong[name] = (documented.get(name), str(actual))
    assert not wrong, f"README default vs the real one: {wrong}"
