"""The gateway's cost, in one run on 127.0.0.1: nginx serves a recorded Wangdiantong
`stockout_order_query_trade` answer (5 stockouts) as the upstream, and wrk measures
(1) `GET /v1/stockouts?limit=5` through the full chain (key, Redis rate limit + quota, metering,
    admission; response cache off), then signing, parsing and mapping,
(2) the same with the policies off (UNIGATE_POLICIES=off: the key is still checked),
(3) nginx `proxy_pass` to that upstream, the floor any gateway is measured against,
(4) the upstream directly,
(5) DESIGN.md's bare Litestar + aiohttp proxy of the same upstream (bench/bare_proxy_app.py: no key, no
    policies, no parsing: the machinery the aim is set against, for this 22 KB answer),
(6) the data floor (bench/floor_app.py): raw ASGI, the gateway's HTTP client, typed decode, the compiled
    mapping of the 5 stockouts and the encoding, nothing else: what any gateway of this API must spend;
then profiles the full chain in-process (pyinstrument) and prints what dominates a request's CPU time.

    .venv/bin/python bench/gateway_chain.py [--duration 5] [--connections 32] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._load import LoadResult, have_wrk, print_table, run_wrk
from gateway.connectors.simdata import resolve_anchor
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.connectors.wangdiantong.client import WdtClient
from gateway.upstream import Upstream
from tests.services import free_port, run_process, wait_for_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PLAN = {"rate_limits": {"per_second": 1_000_000}, "quotas": {"per_day": 1_000_000_000}}


def record_answer(workdir: Path) -> Path:
    """One real answer of the Wangdiantong simulator: 5 stockouts, signed call and all."""
    anchor = resolve_anchor(None)
    app = wdt_sim.create_app(wdt_sim.WdtSimulatorConfig(**wdt_sim.DEFAULT_CREDENTIALS, anchor=anchor))
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        client = WdtClient(base_url=base, upstream=Upstream(), **wdt_sim.DEFAULT_CREDENTIALS)
        form = client.signed_form(
            {
                "start_time": anchor.replace(day=1).strftime("%Y-%m-%d %H:%M:%S"),
                "end_time": anchor.strftime("%Y-%m-%d %H:%M:%S"),
                "is_by_modified": 1,
                "page_no": 0,
                "page_size": 5,
            }
        )
        answer = httpx.post(f"{base}/openapi2/stockout_order_query_trade.php", data=form).content
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    path = workdir / "answer.json"
    path.write_bytes(answer)
    # nginx's workers run as an unprivileged user when started by root: let them read the answer.
    workdir.chmod(0o755)
    path.chmod(0o644)
    return path


@contextmanager
def nginx(workdir: Path, answer: Path) -> Iterator[tuple[str, str]]:
    """The recorded answer on one port (any method, any path) and a proxy_pass to it on another."""
    upstream, proxy = free_port(), free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream erp {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{upstream};
        root {answer.parent};
        default_type application/json;
        location / {{
            # POST to a static file is refused (405): answer the recorded file for every method.
            error_page 405 =200 /answer.json;
            try_files /answer.json =404;
        }}
    }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://erp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], start_new_session=True)
    try:
        wait_for_port("127.0.0.1", upstream)
        wait_for_port("127.0.0.1", proxy)
        yield f"http://127.0.0.1:{upstream}", f"http://127.0.0.1:{proxy}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def bench_setup(workdir: Path) -> Iterator[tuple[str, str, dict[str, str], str]]:
    """nginx serving the recorded answer (upstream URL, proxy_pass URL), Redis, and a consumer seeded with
    a generous plan: (upstream, proxy, the gateways' environment, the consumer's API key)."""
    with ExitStack() as stack:
        answer = record_answer(workdir)
        upstream, proxy = stack.enter_context(nginx(workdir, answer))
        env = gateway_env(workdir, stack.enter_context(redis_server(workdir)))
        yield upstream, proxy, env, seed(env, upstream)


def gateway_env(workdir: Path, redis_url: str) -> dict[str, str]:
    """The environment the benchmarked gateways share: one var folder, secret and Redis."""
    return {
        **os.environ,
        "UNIGATE_VAR_DIR": str(workdir / "var"),
        "UNIGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "UNIGATE_LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
    }


def seed(env: dict[str, str], upstream: str) -> str:
    """Migrate a fresh SQLite store; a consumer subscribed under a plan with limits and a quota; its key."""
    subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"], env=env, check=True, capture_output=True)

    async def work() -> str:
        from gateway.settings import load_settings
        from gateway.store import engine as store_engine
        from gateway.store import manage, policy_manage
        from gateway.store.crypto import Vault

        settings = load_settings(env)
        store_engine.bind(store_engine.make_engine(settings))
        await manage.put_connection(
            Vault(settings.secret_key),
            name="bench-wdt",
            system="wangdiantong",
            base_url=upstream,
            credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
        )
        consumer = await manage.create_consumer("bench", {"stockouts": "bench-wdt"}, by_admin=True)
        await policy_manage.ensure_plan("bench", PLAN)
        await policy_manage.ensure_subscriptions(consumer, "bench")
        return (await manage.create_key(consumer, name="bench")).key

    return asyncio.run(work())


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in a process group: the gateway and its worker."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def gateway(
    env: dict[str, str], workdir: Path, name: str, workers: int = 1, **extra: str
) -> Iterator[tuple[str, int]]:
    """`unigate serve` with `workers` workers (one unless asked); its URL and process group."""
    port = free_port()
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env={**env, **extra},
        log_path=workdir / f"{name}.log",
        ready_port=port,
        timeout=30,
    ) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


@contextmanager
def floor(workdir: Path, upstream: str) -> Iterator[tuple[str, int]]:
    """bench/floor_app.py under granian, one worker: its URL and process group."""
    port = free_port()
    with run_process(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1", "--port", str(port),
         "--no-ws", "--log-level", "warning", "floor_app:app"],
        cwd=Path(__file__).resolve().parent,
        env={**os.environ, "FLOOR_UPSTREAM": upstream},
        log_path=workdir / "floor.log",
        ready_port=port,
        timeout=30,
    ) as proc:  # fmt: skip
        yield f"http://127.0.0.1:{port}", proc.pid


@contextmanager
def bare_proxy(workdir: Path, upstream: str) -> Iterator[str]:
    """bench/bare_proxy_app.py under granian, one worker, uvloop: the same upstream, bytes passed through."""
    port = free_port()
    with run_process(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "1",
         "--port", str(port), "--no-ws", "--log-level", "warning", "bare_proxy_app:app"],
        cwd=Path(__file__).resolve().parent,
        env={"BARE_PROXY_UPSTREAM": upstream},
        log_path=workdir / "bare-proxy.log",
        ready_port=port,
        timeout=30,
    ):  # fmt: skip
        yield f"http://127.0.0.1:{port}"


def measure(url: str, headers: dict[str, str], duration: float, connections: int) -> LoadResult:
    run_wrk(
        url, headers=headers, connections=connections, duration=1
    )  # warm up: pools, caches, JIT-free paths
    return run_wrk(url, headers=headers, connections=connections, duration=duration)


def measure_gateway(
    url: str, pgid: int, headers: dict[str, str], duration: float, connections: int
) -> tuple[LoadResult, float]:
    """The load figures, and the gateway's CPU microseconds per answered request. The latter holds
    still when other work shares the machine (wrk, nginx and Redis run on the same two cores), so it
    is the figure to compare between runs; req/s is what this machine gave in this run."""
    run_wrk(url, headers=headers, connections=connections, duration=1)
    before, started = group_cpu_seconds(pgid), time.perf_counter()
    result = run_wrk(url, headers=headers, connections=connections, duration=duration)
    elapsed = time.perf_counter() - started
    answered = result.rps * elapsed
    return result, (group_cpu_seconds(pgid) - before) / answered * 1e6 if answered else float("nan")


def check(url: str, headers: dict[str, str]) -> None:
    answer = httpx.get(url, headers=headers, timeout=10)
    items = answer.json().get("items") if answer.status_code == 200 else None
    if not items or len(items) != 5:
        raise SystemExit(f"{url} did not answer 5 stockouts: {answer.status_code} {answer.text[:300]}")


async def profile(env: dict[str, str], key: str, requests: int) -> str:
    """The full chain in-process under pyinstrument: what a request spends its CPU time on."""
    from pyinstrument import Profiler

    from gateway.app import create_app
    from gateway.settings import load_settings

    app = create_app(load_settings(env))
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"host", b"127.0.0.1")]

    async def one() -> None:
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/v1/stockouts", "raw_path": b"/v1/stockouts",
            "query_string": b"limit=5", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"in-process request failed: {sent}")

    async with app.lifespan():
        for _ in range(200):
            await one()
        profiler = Profiler(interval=0.001, async_mode="enabled")
        started = time.perf_counter()
        with profiler:
            for _ in range(requests):
                await one()
        per_request = (time.perf_counter() - started) / requests * 1e6
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    return f"in-process, {requests} requests, {per_request:.0f} us each under the profiler\n{text}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-requests", type=int, default=2000)
    args = parser.parse_args()
    if not have_wrk():
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="unigate-bench-")))
        upstream, proxy, env, key = stack.enter_context(bench_setup(workdir))
        headers = {"Authorization": f"Bearer {key}"}
        path = "/v1/stockouts?limit=5"
        rows: list[tuple[str, LoadResult]] = []
        cpu: list[float] = []
        for label, extra in (
            ("(1) gateway, full chain", {}),
            ("(2) gateway, policies off", {"UNIGATE_POLICIES": "off"}),
        ):
            with gateway(env, workdir, label[1], **extra) as (url, pgid):
                check(url + path, headers)
                result, per_request = measure_gateway(
                    url + path, pgid, headers, args.duration, args.connections
                )
                rows.append((label, result))
                cpu.append(per_request)
        with bare_proxy(workdir, upstream) as url:
            bare_proxy_result = measure(url + path, {}, args.duration, args.connections)
            bare_row = ("(5) bare Litestar + aiohttp proxy", bare_proxy_result)
        rows.append(
            ("(3) nginx proxy_pass", measure(proxy + "/openapi2/x.php", {}, args.duration, args.connections))
        )
        rows.append(
            (
                "(4) upstream directly",
                measure(upstream + "/openapi2/x.php", {}, args.duration, args.connections),
            )
        )
        rows.append(bare_row)
        with floor(workdir, upstream) as (url, pgid):
            check(url + path, {})
            floor_result, floor_cpu = measure_gateway(url + path, pgid, {}, args.duration, args.connections)
            rows.append(("(6) data floor: fetch, decode, map, encode", floor_result))
        # Not the aim's figure (one worker): what the same machine gives when the gateway may use both
        # cores, which it shares with wrk, nginx and Redis.
        with gateway(env, workdir, "two-workers", workers=2) as (url, pgid):
            check(url + path, headers)
            two_workers, _ = measure_gateway(url + path, pgid, headers, args.duration, args.connections)
            rows.append(("(7) gateway, full chain, 2 workers", two_workers))
        print(
            f"\nGET {path}, wrk -c {args.connections} -d {args.duration:.0f}s, one gateway worker, 127.0.0.1"
        )
        print_table(rows, baseline="(3) nginx proxy_pass")
        full, bare, nginx_proxy = (rows[i][1].rps for i in range(3))
        print(
            f"\nfull chain: {full:,.0f} req/s = {full / nginx_proxy:.1%} of nginx proxy_pass "
            f"(aim: >= 5,000 and >= 7 %); the policies cost {1 - full / bare:.0%} of the bare gateway's"
        )
        print(
            f"full chain vs (5) the bare Litestar + aiohttp proxy (no key, no policies, no parsing): "
            f"{full / bare_proxy_result.rps:.2f}x"
        )
        print(
            f"gateway CPU per request (all its threads): full chain {cpu[0]:,.0f} us, policies off "
            f"{cpu[1]:,.0f} us: the chain costs {cpu[0] - cpu[1]:,.0f} us; one core at this cost serves "
            f"{1e6 / cpu[0]:,.0f} req/s"
        )
        print(
            f"the data floor (6), the work no gateway of this API can skip: {floor_result.rps:,.0f} req/s at "
            f"{floor_cpu:,.0f} us CPU a request; the full chain is {full / floor_result.rps:.2f}x of it and "
            f"spends {cpu[0] - floor_cpu:,.0f} us more a request (the key, the policies, Redis, Litestar, "
            f"signing, the connector's walk, PII guard, metering and metrics)"
        )
        if not args.no_profile:
            print("\nWhere a request's CPU time goes (full chain):")
            print(asyncio.run(profile(env, key, args.profile_requests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
