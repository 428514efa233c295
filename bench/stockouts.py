"""GET /v1/stockouts?limit=5 through the gateway against the same call made straight to the simulator.

Starts the Wangdiantong simulator and one gateway worker (granian) on 127.0.0.1, loads both with wrk
for a bounded time, and prints requests/s, p50, p99 and the ratio to the direct call. Run:

    .venv/bin/python bench/stockouts.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import have_wrk, print_table, run_load, run_wrk
from cryptography.fernet import Fernet

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.connectors.wangdiantong.client import WdtClient
from gateway.settings import load_settings
from gateway.store import engine as store_engine
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.upstream import Upstream
from tests.services import free_port, run_process

LUA_POST = """
wrk.method = "POST"
wrk.body = {body!r}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


async def _seed(env: dict[str, str], wdt_url: str) -> str:
    settings = load_settings(env)
    engine = store_engine.make_engine(settings)
    store_engine.bind(engine)
    vault = Vault(settings.secret_key)
    credentials = dict(wdt_sim.DEFAULT_CREDENTIALS)
    await manage.put_connection(
        vault, name="wdt", system="wangdiantong", base_url=wdt_url, credentials=credentials
    )
    consumer = await manage.create_consumer("bench", {"*": "wdt"}, by_admin=True)
    # A plan without limits: this measures translation, not the limiter (bench/gateway_chain.py does).
    await policy_manage.ensure_plan("bench", {"priority": "normal"})
    await policy_manage.ensure_subscriptions(consumer, "bench")
    return (await manage.create_key(consumer, name="bench")).key


def _direct_body() -> str:
    """A signed stockout query for the last 30 days, page 0 of 5: what the gateway sends for one request."""
    client = WdtClient(base_url="http://unused", upstream=Upstream(), **wdt_sim.DEFAULT_CREDENTIALS)
    now = time.time()
    fmt = "%Y-%m-%d %H:%M:%S"
    params = {
        "is_by_modified": 1,
        "start_time": time.strftime(fmt, time.localtime(now - 30 * 86400)),
        "end_time": time.strftime(fmt, time.localtime(now)),
        "page_no": 0,
        "page_size": 5,
    }
    return urlencode(client.signed_form(params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="unigate-bench-"))
    env = {
        "UNIGATE_VAR_DIR": str(work),
        "UNIGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "UNIGATE_LOG_LEVEL": "WARNING",
        "TZ": "Asia/Shanghai",
    }
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    cli = [sys.executable, "-m", "gateway.cli"]
    sim_ports = {name: free_port() for name in ("wdt", "target", "kd100")}
    gateway_port = free_port()
    ports = ["--wdt-port", str(sim_ports["wdt"]), "--wdt-target-port", str(sim_ports["target"])]
    with run_process(
        [*cli, "simulators", *ports, "--kd100-port", str(sim_ports["kd100"])],
        env=env,
        log_path=work / "simulators.log",
        ready_port=sim_ports["wdt"],
    ):  # fmt: skip
        wdt_url = f"http://127.0.0.1:{sim_ports['wdt']}"
        import subprocess

        subprocess.run([*cli, "migrate"], env={**os.environ, **env}, check=True, capture_output=True)
        key = asyncio.run(_seed(env, wdt_url))
        with run_process(
            [*cli, "serve", "--port", str(gateway_port), "--workers", "1"],
            env=env,
            log_path=work / "gateway.log",
            ready_url=f"http://127.0.0.1:{gateway_port}/healthz",
        ):
            gateway_url = f"http://127.0.0.1:{gateway_port}/v1/stockouts?limit=5"
            headers = {"Authorization": f"Bearer {key}"}
            script = work / "direct.lua"
            script.write_text(LUA_POST.format(body=_direct_body()).replace("'", '"'))
            direct_url = f"{wdt_url}/openapi2/stockout_order_query_trade.php"
            seconds, connections = args.seconds, args.connections
            rows = []
            if have_wrk():
                direct = run_wrk(direct_url, connections=connections, duration=seconds, script=str(script))
                rows.append(("simulator direct", direct))
                rows.append(("gateway /v1/stockouts", run_wrk(gateway_url, headers, connections, seconds)))
            else:
                print("wrk not found (apt-get install wrk); using the slower Python load generator")
                load = run_load(gateway_url, headers=headers, duration=seconds)
                rows.append(("gateway /v1/stockouts", asyncio.run(load)))
            print(f"\n{connections} connections, {seconds:.0f}s each, one gateway worker, 127.0.0.1")
            print_table(rows, baseline=rows[0][0])


if __name__ == "__main__":
    main()
