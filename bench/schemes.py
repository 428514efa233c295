"""End-to-end records/s of the reference scheme (stockouts + kuaidi100 tracking -> trade_push) between the
simulators (no rate limits), with 1 and 2 `unigate worker` processes on Redis, and a worker's memory.

Baseline, measured in the same run: the same pipeline as one bare loop over the same connectors (pull,
enrich, map, push; no queue, no journal, no dedup), so the ratio is what the scheme machinery costs.

    .venv/bin/python bench/schemes.py [--stockouts 2400] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import free_port, wait_for_port  # noqa: E402


def _env(var_dir: str, redis_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "UNIGATE_VAR_DIR": var_dir,
        "UNIGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "REDIS_URL": redis_url,
        "UNIGATE_LOG_LEVEL": "WARNING",
        "UNIGATE_SCHEME_POLL_SECONDS": "0.1",
    }


def _unigate(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(self, workdir: Path, stockouts: int, concurrency: int) -> None:
        self.workdir = workdir
        self.stockouts = stockouts
        self.concurrency = concurrency
        self.ports = {"wdt-demo": free_port(), "wdt-target": free_port(), "kd100-demo": free_port()}

    def start_redis(self) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", port)
        return proc, f"redis://127.0.0.1:{port}/0"

    def start_simulators(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Fresh simulators each time: an empty target, so every measurement pushes every trade.
        p = self.ports
        proc = _unigate(
            "simulators",
            "--wdt-port", str(p["wdt-demo"]),
            "--wdt-target-port", str(p["wdt-target"]),
            "--kd100-port", str(p["kd100-demo"]),
            env=env,
        )  # fmt: skip
        for port in p.values():
            wait_for_port("127.0.0.1", port)
        return proc

    async def seed(self, env: dict[str, str]) -> None:
        from gateway.demo import seed_demo
        from gateway.settings import load_settings
        from gateway.store import engine as store_engine

        settings = load_settings(env)
        engine = store_engine.make_engine(settings)
        store_engine.bind(engine)
        await seed_demo(settings, host="127.0.0.1", ports=self.ports)

    async def measure(self, env: dict[str, str], workers: int, name: str) -> dict[str, Any]:
        """Queue a full run of a fresh copy of the reference scheme; time it with `workers` processes."""
        from gateway.schemes import service
        from gateway.store.scheme_tables import SchemeRun

        template = await service.get_scheme(service.REFERENCE_SCHEME)
        await service.put_scheme(name, template["definition"], priority="normal")
        procs = [
            _unigate(
                "worker",
                "--concurrency",
                str(self.concurrency),
                env=env,
                log=self.workdir / f"{name}-{n}.log",
            )
            for n in range(workers)
        ]
        try:
            await asyncio.sleep(2)  # the workers import and connect before the clock starts
            started = time.perf_counter()
            run_id = await service.run_now(name, full=True)
            while True:
                row = await SchemeRun.select().where(SchemeRun.id == run_id).first()
                assert row is not None
                if row["status"] not in ("queued", "running", "stopping"):
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            rss = max(_peak_rss_mib(p.pid) for p in procs)
        finally:
            for proc in procs:
                _stop(proc)
        return {"status": row["status"], "records": row["succeeded"], "failed": row["failed"],
                "seconds": elapsed, "rate": row["succeeded"] / elapsed, "rss": rss}  # fmt: skip

    async def baseline(self, env: dict[str, str]) -> dict[str, Any]:
        """The same work as one bare loop: pull, enrich (8 at a time), map, push in 50s."""
        from datetime import UTC, datetime, timedelta

        from gateway.schemes import service
        from gateway.schemes.runner import Contexts, delivery_hash, enrich_records
        from gateway.schemes.worker import services
        from gateway.settings import load_settings

        settings = load_settings(env)
        async with services(settings, memory=True) as held:
            scheme = await service.get_scheme(service.REFERENCE_SCHEME)
            context = await Contexts(held.connector).build(scheme["id"])
            definition = context.definition
            source = held.connector(definition.source.connection)
            target = held.connector(definition.target.connection)
            assert context.mapping is not None
            started = time.perf_counter()
            until = datetime.now(UTC)
            since = until - timedelta(days=definition.source.incremental.initial_days)
            cursor, pushed = None, 0
            while True:
                page = await source.pull(
                    definition.source.operation, definition.source.params, since, until, cursor
                )
                records = await enrich_records(context, page.records)
                trades = [context.mapping(record) for record in records]
                for trade in trades:
                    delivery_hash(context.destination, trade)
                for start in range(0, len(trades), 50):
                    outcomes = await target.push(
                        "trade_push", trades[start : start + 50], definition.target.params
                    )
                    pushed += sum(outcome.ok for outcome in outcomes)
                cursor = page.cursor
                if cursor is None:
                    break
            elapsed = time.perf_counter() - started
        return {"records": pushed, "seconds": elapsed, "rate": pushed / elapsed}


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"], env=env, check=True, capture_output=True)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stockouts", type=int, default=2400, help="stockouts seeded in the source")
    parser.add_argument("--concurrency", type=int, default=4, help="batches each worker works at once")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="unigate-bench-schemes-"))
    bench = Bench(workdir, args.stockouts, args.concurrency)
    redis, redis_url = bench.start_redis()
    env = _env(str(workdir / "var"), redis_url)
    migrate(env)
    await bench.seed(env)
    results: dict[str, dict[str, Any]] = {}
    try:
        for label, work in (
            ("baseline (bare loop)", lambda: bench.baseline(env)),
            ("1 worker", lambda: bench.measure(env, 1, "bench-1")),
            ("2 workers", lambda: bench.measure(env, 2, "bench-2")),
        ):
            sims = bench.start_simulators(env)
            try:
                results[label] = await work()
            finally:
                _stop(sims)
    finally:
        redis.terminate()
        redis.wait()
    base = results["baseline (bare loop)"]["rate"]
    records = results["1 worker"]["records"]
    print(f"reference scheme, {records} records, worker concurrency {args.concurrency}, "
          "simulators without rate limits, Redis queue, SQLite store")  # fmt: skip
    for label, result in results.items():
        extra = f"  worker peak RSS {result['rss']:.0f} MiB" if "rss" in result else ""
        print(f"  {label:<22} {result['records']:>5} records in {result['seconds']:6.2f} s = "
              f"{result['rate']:7.1f} records/s  ({result['rate'] / base:.2f}x baseline){extra}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
