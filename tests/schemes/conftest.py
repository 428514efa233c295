"""Fixtures for scheme tests: fresh simulators per test (a source ERP, a target ERP that counts every trade
it is pushed, kuaidi100), connections and the reference scheme on them, and a way to run it in-process."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from aiohttp import web

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.simdata import resolve_anchor
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.demo import install_reference_scheme
from gateway.schemes import service
from gateway.schemes.worker import run_headless, services
from gateway.settings import Settings, load_settings
from gateway.store import engine as store_engine
from gateway.store.crypto import Vault
from gateway.store.scheme_tables import Scheme, SchemeRun
from tests.conftest import SEED, Gateway, _LoopThread, _serve, migrate
from tests.portal.conftest import make_account, sign_in
from tests.services import free_port, run_process

TEMPLATE_MAPPING = Path(__file__).parents[2] / "gateway/schemes/templates/stockout_to_trade_push.yaml"


@dataclass
class Target:
    """What the target ERP was sent: every trade of every trade_push call, by tid, in order."""

    app: web.Application
    pushes: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)  # tid -> when it was last stored (monotonic)
    calls: list[float] = field(default_factory=list)  # when each call of any kind arrived (monotonic)
    delay: float = 0.0  # seconds each trade_push call takes (a slow target)
    fail_next: int = 0  # answer this many trade_push calls with the vendor's "too frequent"

    @property
    def state(self) -> wdt_sim.WdtState:
        return self.app[wdt_sim.STATE_KEY]


@dataclass
class Sims:
    source_url: str
    target_url: str
    kd100_url: str
    source: web.Application
    target: Target

    @property
    def source_state(self) -> wdt_sim.WdtState:
        return self.source[wdt_sim.STATE_KEY]


def _counting(target: Target) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        target.calls.append(time.monotonic())
        if request.path.endswith("/trade_push.php"):
            if target.delay:
                await asyncio.sleep(target.delay)
            if target.fail_next > 0:
                target.fail_next -= 1
                body = {"code": wdt_sim.CODE_RATE_LIMITED, "message": wdt_sim.RATE_LIMIT_MESSAGE}
                return web.json_response(body)
            response = await handler(request)
            form = await request.post()
            answer = msgspec.json.decode(response.body) if isinstance(response, web.Response) else {}  # type: ignore[arg-type]
            rejected = {item["tid"] for item in _rejected(answer)}
            for trade in msgspec.json.decode(str(form.get("trade_list", "[]"))):
                if str(trade.get("tid")) not in rejected:
                    target.pushes[str(trade.get("tid"))] += 1
                    target.order.append(str(trade.get("tid")))
                    target.times[str(trade.get("tid"))] = time.monotonic()
            return response
        return await handler(request)

    return middleware


def _rejected(answer: dict[str, Any]) -> list[dict[str, Any]]:
    message = answer.get("message") or ""
    return list(msgspec.json.decode(message)) if message.startswith("[") else []


@pytest.fixture
def sims_factory() -> Iterator[Callable[..., Sims]]:
    """Start simulators for one test: `make(stockouts=150)`; stopped when the test ends."""
    thread = _LoopThread()
    runners: list[web.AppRunner] = []

    def make(stockouts: int = 150, qps: float = 0.0) -> Sims:
        anchor = resolve_anchor(None)
        creds = wdt_sim.DEFAULT_CREDENTIALS
        source = wdt_sim.create_app(
            wdt_sim.WdtSimulatorConfig(**creds, seed=SEED, anchor=anchor, stockout_count=stockouts, qps=qps)
        )
        target_app = wdt_sim.create_app(
            wdt_sim.WdtSimulatorConfig(**creds, seed=SEED, anchor=anchor, seed_data=False)
        )
        target = Target(app=target_app)
        target_app.middlewares.append(_counting(target))
        kd100 = kd100_sim.create_app(
            kd100_sim.Kd100SimulatorConfig(
                **kd100_sim.DEFAULT_CREDENTIALS, seed=SEED, anchor=anchor, stockout_count=stockouts
            )
        )
        urls = []
        for app in (source, target_app, kd100):
            runner, url = thread.run(_serve(app))
            runners.append(runner)
            urls.append(url)
        return Sims(urls[0], urls[1], urls[2], source, target)

    try:
        yield make
    finally:
        for runner in runners:
            thread.run(runner.cleanup())
        thread.stop()


@pytest.fixture
async def admin_http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API as a signed-in admin's browser calls it (session cookie and CSRF header)."""
    account = await make_account("admin", prefix="schemes-admin")
    session = await sign_in(gateway.url, account)
    session.http.headers["x-csrftoken"] = session.csrf
    try:
        yield session.http
    finally:
        await session.http.aclose()


@dataclass
class Flow:
    """A reference scheme on its own connections, and the settings to run it with."""

    name: str
    scheme_id: int
    settings: Settings
    env: dict[str, str]
    sims: Sims
    connections: dict[str, str]

    async def run(
        self, *, full: bool = False, concurrency: int = 2, run_id: int | None = None
    ) -> dict[str, Any]:
        """One run in this process, to its end (a new one, or the queued `run_id`); returns its summary."""
        async with services(self.settings, memory=True) as held:
            run_id, worker = await run_headless(
                held,
                self.scheme_id,
                concurrency=concurrency,
                options={"full": True} if full else {},
                run_id=run_id,
            )
            await asyncio.wait_for(worker.run(schedule=False, until_run=run_id), 120)
        row = await SchemeRun.select().where(SchemeRun.id == run_id).first()
        assert row is not None
        return service.run_summary(row)

    def expected_tids(self) -> set[str]:
        """The platform order number of every stockout the scheme reads (all but cancelled ones)."""
        return {tid_of(s) for s in self.sims.source_state.stockouts if s["status"] != "5"}


def tid_of(stockout: dict[str, Any]) -> str:
    """The reference mapping's tid: the first platform order number, else the ERP's own order number."""
    return (
        (stockout["src_tids"].split(",")[0] or stockout["src_order_no"])
        if stockout["src_tids"]
        else stockout["src_order_no"]
    )


@pytest.fixture
async def flow_factory(
    store: tuple[Settings, dict[str, str]], sims_factory: Callable[..., Sims]
) -> AsyncIterator[Callable[..., Awaitable[Flow]]]:
    settings, env = store
    engines: list[Any] = []

    async def make(
        stockouts: int = 150,
        *,
        priority: str = "normal",
        database_url: str | None = None,
        sims: Sims | None = None,
        tweak: Callable[[dict[str, Any]], None] | None = None,
        **tuning: Any,
    ) -> Flow:
        sims = sims or sims_factory(stockouts)
        # Unique in the session's store whichever module asks: the portal's tests import these fixtures,
        # and a counter per module copy gave two tests the same scheme, the second starting from the first's
        # checkpoint (and reading nothing).
        n = uuid.uuid4().hex[:8]
        base, base_env = settings, env
        if database_url is not None:  # another database (PostgreSQL): migrated, and bound for this test
            base_env = {**env, "DATABASE_URL": database_url}
            migrate(base_env)
            base = load_settings(base_env)
            engine = store_engine.make_engine(base)
            store_engine.bind(engine)
            await store_engine.start(engine)
            engines.append(engine)
        vault = Vault(base.secret_key)
        names = {"source": f"src-{n}", "target": f"dst-{n}", "tracking": f"kd-{n}"}
        urls = {"source": sims.source_url, "target": sims.target_url, "tracking": sims.kd100_url}
        await install_reference_scheme(vault, urls, names)
        scheme = await service.get_scheme(service.REFERENCE_SCHEME)
        definition = dict(scheme["definition"])
        definition["retry"] = {"attempts": 3, "backoff_seconds": 0.05, "max_backoff_seconds": 0.2}
        if tweak:
            tweak(definition)
        name = f"flow-{n}"
        ident = await service.put_scheme(name, definition, priority=priority)
        # The template's own row is only a source for copies here.
        await service.delete_scheme(service.REFERENCE_SCHEME)
        fast = msgspec.structs.replace(
            base,
            config_poll_seconds=0.2,
            scheme_poll_seconds=0.1,
            scheme_lease_seconds=2.0,
            scheme_claim_idle_seconds=2.0,
            **tuning,
        )
        return Flow(name, ident, fast, base_env, sims, names)

    yield make
    # A schedule left on would fire in the workers of later tests, against simulators stopped by then.
    await Scheme.update({Scheme.enabled: False, Scheme.next_run_at: None}).where(
        Scheme.enabled == True  # noqa: E712 (a column comparison, not a truth test)
    )
    for engine in engines:
        await store_engine.stop(engine)
    if engines:  # the session's SQLite store again, for the tests that follow
        store_engine.bind(store_engine.make_engine(settings))


# -- worker processes and the CLI -------------------------------------------------------------------


def worker_env(flow: Flow, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """Settings for `unigate` processes over a flow's store: quick polls, short leases (a killed or stopped
    worker's run is taken over within seconds)."""
    env = {
        **flow.env,
        "UNIGATE_SCHEME_LEASE_SECONDS": "2",
        "UNIGATE_SCHEME_CLAIM_IDLE_SECONDS": "2",
        "UNIGATE_SCHEME_POLL_SECONDS": "0.1",
        **({"REDIS_URL": redis_url} if redis_url else {}),
    }
    return {**env, **extra}


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    health_url: str

    def health(self) -> dict[str, Any]:
        """The worker's /healthz: its name, the runs it drives and the batches it finished."""
        return dict(httpx.get(self.health_url, timeout=5).json())


@contextmanager
def worker_processes(env: dict[str, str], count: int, log_dir: Path) -> Iterator[list[WorkerProcess]]:
    """`count` real `unigate worker` processes, started side by side, each ready (its health answers)."""
    ports = [free_port() for _ in range(count)]
    starting = [
        run_process(
            [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
            env=env,
            log_path=log_dir / f"worker-{n}.log",
            ready_url=f"http://127.0.0.1:{port}/healthz",
        )
        for n, port in enumerate(ports)
    ]
    with ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        entered = [pool.submit(manager.__enter__) for manager in starting]
        failure: BaseException | None = None
        started = []
        for manager, future, port in zip(starting, entered, ports, strict=True):
            try:
                proc = future.result()
            except BaseException as exc:  # the others that did start are still stopped on the way out
                failure = failure or exc
                continue
            stack.push(manager.__exit__)
            started.append(WorkerProcess(proc, f"http://127.0.0.1:{port}/healthz"))
        if failure is not None:
            raise failure
        yield started


async def unigate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `unigate ARGS...` as a user would, without blocking the test's event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Wait for `check` to hold (a bound on a hang, not a timing assertion). A check that reads the SQLite
    store while the workers write it may find it locked beyond its busy timeout on a loaded machine: that
    is "not yet", asked again, not a failure of what is being waited for."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if await check():
                return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def runs_of(scheme_id: int) -> list[dict[str, Any]]:
    """A scheme's runs, oldest first."""
    return list(
        await SchemeRun.select()
        .where(SchemeRun.scheme == scheme_id)
        .order_by(SchemeRun.id)
        .output(load_json=True)
    )


FINAL = ("succeeded", "partial", "failed", "stopped")
