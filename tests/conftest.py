"""Shared fixtures: the simulators as real HTTP servers, and a real gateway process in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from piccolo.engine.base import Engine

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.simdata import resolve_anchor
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.settings import Settings, load_settings
from gateway.store import engine as store_engine
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.piccolo_app import APP_CONFIG
from tests.services import free_port, run_process

pytest_plugins = ["tests.services", "tests.browser"]

SECRET_KEY = Fernet.generate_key().decode()
# Every consumer calling /v1 needs a subscription; the test app's plan limits nothing the tests do.
TEST_PLAN = "default"
TEST_PLAN_CONFIG = {"rate_limits": {"per_second": 1000}}
SEED = 20260301


@dataclass
class Simulator:
    url: str
    app: web.Application


@dataclass
class Simulators:
    anchor: datetime
    wdt: Simulator
    wdt_target: Simulator
    kd100: Simulator
    wdt_throttled: Simulator  # the same ERP data behind a 2 calls/second limit
    blackhole: str  # accepts connections and never answers


class _LoopThread:
    """An event loop in its own thread, so the simulators answer even while a test blocks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simulators", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def simulators() -> Iterator[Simulators]:
    """Two Wangdiantong ERPs (a seeded source, an empty target) and kuaidi100, on 127.0.0.1."""
    anchor = resolve_anchor(None)
    creds = wdt_sim.DEFAULT_CREDENTIALS
    apps = {
        "wdt": wdt_sim.create_app(wdt_sim.WdtSimulatorConfig(**creds, seed=SEED, anchor=anchor)),
        "wdt_target": wdt_sim.create_app(
            wdt_sim.WdtSimulatorConfig(**creds, seed=SEED, anchor=anchor, seed_data=False)
        ),
        "kd100": kd100_sim.create_app(
            kd100_sim.Kd100SimulatorConfig(**kd100_sim.DEFAULT_CREDENTIALS, seed=SEED, anchor=anchor)
        ),
        "wdt_throttled": wdt_sim.create_app(
            wdt_sim.WdtSimulatorConfig(**creds, seed=SEED, anchor=anchor, stockout_count=200, qps=2)
        ),
    }
    # The kernel completes the handshake for a listening socket nobody accepts from: a backend that hangs.
    blackhole = socket.create_server(("127.0.0.1", 0), backlog=64)
    thread = _LoopThread()
    runners: list[web.AppRunner] = []
    servers: dict[str, Simulator] = {}
    try:
        for name, app in apps.items():
            runner, url = thread.run(_serve(app))
            runners.append(runner)
            servers[name] = Simulator(url, app)
        port = blackhole.getsockname()[1]
        yield Simulators(anchor=anchor, blackhole=f"http://127.0.0.1:{port}", **servers)
    finally:
        blackhole.close()
        for runner in runners:
            thread.run(runner.cleanup())
        thread.stop()


@dataclass
class Gateway:
    url: str
    settings: Settings
    key: str
    consumer_id: int
    log_path: Path


def gateway_env(var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "UNIGATE_VAR_DIR": str(var_dir),
        "UNIGATE_SECRET_KEY": SECRET_KEY,
        "UNIGATE_CONFIG_POLL_SECONDS": "0.2",
        "UNIGATE_UPSTREAM_TIMEOUT": "2",
        "UNIGATE_LOG_LEVEL": "WARNING",
        **extra,
    }


def unigate(
    env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the `unigate` command as an operator would, with `env` on top of this environment."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def migrate(env: dict[str, str]) -> None:
    unigate(env, "migrate")


@contextlib.asynccontextmanager
async def bound_store(env: dict[str, str]) -> AsyncIterator[Engine]:
    """Every table bound to the database `env` names for the block, then bound back as it was."""
    engine = store_engine.make_engine(load_settings(env))
    previous = [(table, table._meta.db) for table in APP_CONFIG.table_classes]
    store_engine.bind(engine)
    await store_engine.start(engine)
    try:
        yield engine
    finally:
        await store_engine.stop(engine)
        for table, db in previous:
            table._meta.db = db


@pytest.fixture(scope="session")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Settings, dict[str, str]]]:
    """A migrated SQLite database the tests and the gateway process share."""
    var_dir = tmp_path_factory.mktemp("var")
    env = gateway_env(var_dir)
    migrate(env)
    settings = load_settings(env)
    engine = store_engine.make_engine(settings)
    store_engine.bind(engine)
    yield settings, env


@pytest.fixture(scope="session")
async def gateway(
    store: tuple[Settings, dict[str, str]], simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """A real `unigate serve` process with a consumer, a key and connections to the simulators."""
    settings, env = store
    vault = Vault(settings.secret_key)
    wdt, kd100 = wdt_sim.DEFAULT_CREDENTIALS, kd100_sim.DEFAULT_CREDENTIALS
    connections: dict[str, tuple[str, str, dict[str, Any]]] = {
        "wdt-demo": ("wangdiantong", simulators.wdt.url, dict(wdt)),
        "wdt-target": ("wangdiantong", simulators.wdt_target.url, dict(wdt)),
        "kd100-demo": ("kuaidi100", simulators.kd100.url, dict(kd100)),
        "wdt-badsign": ("wangdiantong", simulators.wdt.url, {**wdt, "appsecret": "not-the-secret"}),
        "kd100-badsign": ("kuaidi100", simulators.kd100.url, {**kd100, "key": "not-the-key"}),
        "wdt-down": ("wangdiantong", f"http://127.0.0.1:{free_port()}", dict(wdt)),
        "wdt-hangs": ("wangdiantong", simulators.blackhole, dict(wdt)),
        "wdt-throttled": ("wangdiantong", simulators.wdt_throttled.url, dict(wdt)),
    }
    # The simulators are open to every application, as `unigate demo` makes them: developers' portal apps
    # name them as defaults. The others are not: only apps granted them may use them.
    opened = {"wdt-demo", "wdt-target", "kd100-demo"}
    for name, (system, url, creds) in connections.items():
        await manage.put_connection(
            vault, name=name, system=system, base_url=url, credentials=creds, open=name in opened
        )
    # Granted every connection above: the tests name them in X-Connection.
    consumer = await manage.create_consumer(
        "test-app",
        {"stockouts": "wdt-demo", "orders": "wdt-demo", "logistics": "kd100-demo"},
        grants=list(connections),
    )
    await policy_manage.ensure_plan(TEST_PLAN, TEST_PLAN_CONFIG)
    await policy_manage.ensure_subscriptions(consumer, TEST_PLAN)
    issued = await manage.create_key(consumer, name="tests")
    port = free_port()
    log_path = tmp_path_factory.mktemp("logs") / "gateway.log"
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env={**env, "UNIGATE_LOG_LEVEL": "INFO"},
        log_path=log_path,
        ready_url=f"http://127.0.0.1:{port}/healthz",
    ):
        yield Gateway(f"http://127.0.0.1:{port}", settings, issued.key, consumer, log_path)


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.key}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
def anonymous(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        yield http
