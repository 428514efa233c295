"""What counting a request's limits costs: RateLimit + Quota with 4 counters (2 rate windows, a day and a
month quota) on Redis (through the counters' own connection, and through redis-py's command path) and
in-process, beside a bare redis-py EVALSHA round trip to the same Redis in the same run.

    .venv/bin/python bench/rate_limits.py [--requests 5000]

Starts its own redis-server on a free 127.0.0.1 port and stops it. Each figure is the best of 3
passes of `--requests` sequential requests (sequential: the cost of one request, not throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on the path, where bench/gateway_chain.py would hide the package.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from redis.asyncio import Redis  # noqa: E402

from gateway.store.snapshot import EMPTY  # noqa: E402
from policies.authorize import EffectivePlan  # noqa: E402
from policies.chain import Context  # noqa: E402
from policies.counters import Counters, MemoryCounters, RedisCounters  # noqa: E402
from policies.quota import Quota, Quotas  # noqa: E402
from policies.ratelimit import RateLimits, rate_checks  # noqa: E402

IDS = ("1", "orders")
PLAN = EffectivePlan(
    subscription_id=1,
    status="active",
    name="bench",
    priority=1,
    allowed=frozenset({"orders:read"}),
    identifiers=IDS,
    rate_checks=rate_checks(RateLimits(per_second=10**8, per_minute=10**9), IDS),
    quotas=Quotas(per_day=10**9, per_month=10**10),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def best_of(passes: int, requests: int, one: Callable[[], Awaitable[Any]]) -> float:
    """Microseconds per request, the best of `passes` (the least disturbed by other load)."""
    for _ in range(200):
        await one()
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for _ in range(requests):
            await one()
        best = min(best, (time.perf_counter() - started) / requests * 1e6)
    return best


def limits_step(counters: Counters) -> Callable[[], Awaitable[None]]:
    """One request through RateLimit (its checks on the tally) and Quota (which settles them)."""
    quota = Quota(counters, "Asia/Shanghai")

    async def handler(_: Context) -> None:
        return None

    async def one() -> None:
        ctx = Context({"type": "http"}, handler, handler, {}, "r", EMPTY, "orders", "orders:read")
        ctx.plan = PLAN
        ctx.tally = PLAN.rate_checks
        await quota(ctx, handler)

    return one


async def run(url: str, requests: int) -> None:
    redis = Redis.from_url(url)
    try:
        bare = redis.register_script("return 1")
        figures = {
            "bare EVALSHA round trip (baseline)": await best_of(3, requests, lambda: bare(keys=[], args=[]))
        }
        await redis.config_resetstat()
        counters = RedisCounters(redis)
        figures["limits step, Redis (4 counters)"] = await best_of(3, requests, limits_step(counters))
        await counters.aclose()
        info = await redis.info("commandstats")
        server = info.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0)
        # The same step sending its EVALSHA through redis-py's command path, as it did before
        # policies/redis_lane.py: what that module saves.
        through_redis_py = RedisCounters(redis)
        through_redis_py.lane = None
        figures["limits step, Redis via redis-py (4 counters)"] = await best_of(
            3, requests, limits_step(through_redis_py)
        )
        figures["limits step, in-process (4 counters)"] = await best_of(
            3, requests, limits_step(MemoryCounters())
        )
    finally:
        await redis.aclose()
    baseline = figures["bare EVALSHA round trip (baseline)"]
    print(f"{'':46} {'µs/request':>11} {'vs baseline':>12}")
    for name, micros in figures.items():
        print(f"{name:46} {micros:11.1f} {micros / baseline:11.2f}x")
    print(f"Redis's own time running the limits script: {server:.1f} µs a call")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        asyncio.run(run(f"redis://127.0.0.1:{port}/0", args.requests))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
