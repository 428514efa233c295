"""How long a healthy local Redis takes to answer the gateway's calls, idle and with the machine overloaded:
the figures behind UNIGATE_REDIS_TIMEOUT's default (a timeout below the loaded tail would send a healthy
node into per-node counting; far above it, a frozen Redis costs each request more than it must).

    .venv/bin/python bench/redis_timeout.py [--seconds 5] [--concurrency 64] [--burners 3]

Each phase runs for --seconds: the counters' EVALSHA over their own lane (policies/redis_lane.py) and a GET
through redis-py (the response cache, the caps), `--concurrency` callers at once in one event loop, as a
gateway worker's requests are. The loaded phase also runs `--burners` processes spinning on the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable

import hiredis
from redis.asyncio import Redis

from policies.counters import ACQUIRE_LUA
from policies.redis_lane import Lane

TIMEOUTS = (0.05, 0.1, 0.25, 0.5)  # candidate defaults: how many healthy calls each would have failed


def _burn(until: float) -> None:
    while time.monotonic() < until:
        pass


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


async def _phase(call: Callable[[], Awaitable[object]], seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return sorted(latencies)


def _row(name: str, latencies: list[float], baseline: list[float] | None) -> str:
    p50, p99, p999 = (_percentile(latencies, q) * 1000 for q in (0.5, 0.99, 0.999))
    worst = latencies[-1] * 1000
    over = " ".join(f">{t * 1000:.0f}ms:{sum(x > t for x in latencies)}" for t in TIMEOUTS)
    ratio = f"  max x{worst / (baseline[-1] * 1000):.1f} of idle" if baseline else ""
    return (
        f"{name:<28} {len(latencies):>7} calls  p50 {p50:6.2f}  p99 {p99:6.2f}  p99.9 {p999:7.2f}  "
        f"max {worst:7.2f} ms  {over}{ratio}"
    )


async def _measure(url: str, seconds: float, concurrency: int, burners: int) -> None:
    redis = Redis.from_url(url)
    lane = Lane(redis)
    sha = await redis.script_load(ACQUIRE_LUA)
    # One sliding-window limit of 10**9 a minute (kind, limit, window, seed): the script's full path, never
    # refusing.
    evalsha = hiredis.pack_command(
        ("EVALSHA", sha, 2, "LIMITS:{bench}/-1", "LIMITS:{bench}", 1, "s", 10**9, 60, 0)
    )
    await redis.set("bench:cache", b"x" * 2048)

    async def counters() -> object:
        return await lane.call(evalsha)

    async def cache() -> object:
        return await redis.get("bench:cache")

    try:
        for name, call in (("counters (lane EVALSHA)", counters), ("cache (redis-py GET)", cache)):
            idle = await _phase(call, seconds, concurrency)
            print(_row(f"{name}, idle", idle, None))
            until = time.monotonic() + seconds + 1
            procs = [multiprocessing.Process(target=_burn, args=(until,)) for _ in range(burners)]
            for proc in procs:
                proc.start()
            try:
                loaded = await _phase(call, seconds, concurrency)
            finally:
                for proc in procs:
                    proc.join()
            print(_row(f"{name}, {burners} burners", loaded, idle))
    finally:
        lane.close()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--burners", type=int, default=3)
    args = parser.parse_args()
    if not 0 < args.seconds <= 60:
        raise SystemExit("--seconds: from 0 to 60")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.05)
            asyncio.run(_measure(f"redis://127.0.0.1:{port}/0", args.seconds, args.concurrency, args.burners))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
