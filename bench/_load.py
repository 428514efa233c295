"""Load generators for the benchmarks: `run_load` (aiohttp, in-process) and `run_wrk` (wrk), both
bounded in time, both 127.0.0.1 only, and `print_table` to set each figure beside a baseline.

Which to use: on this 2-core machine a Python load generator takes a core the server under test
would otherwise have, so it reports a lower ceiling (roughly what one Python client can push),
and its latencies include its own event loop's scheduling. wrk costs a fraction of that CPU and
is the tool the performance budget in DESIGN.md was measured with: prefer it for throughput
figures (`have_wrk()`), and use `run_load` when a request needs Python to build it, or when
wrk is not installed (Debian package `wrk`). Compare only figures taken by the same tool.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

MAX_DURATION = 300.0
REQUEST_TIMEOUT = 10.0
WRK = "/usr/bin/wrk"


@dataclass(frozen=True)
class LoadResult:
    """What a run measured: `requests` counts every finished request, `errors` those that were not
    2xx (by status, or by exception name, in `statuses`); `rps` counts answered requests only."""

    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[str] = field(default_factory=Counter)


def _check_target(url: str, duration: float) -> None:
    # A benchmark must never turn into load on someone else's host.
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"load is only sent to 127.0.0.1, not {host!r}")
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"duration must be in (0, {MAX_DURATION:.0f}] seconds, got {duration}")


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in (0, 1]); 0.0 when nothing was measured."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def run_load(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    concurrency: int = 32,
    duration: float = 5.0,
    max_requests: int | None = None,
) -> LoadResult:
    """GET `url` from `concurrency` loops sharing one session until `duration` seconds pass or
    `max_requests` have been sent, whichever comes first."""
    _check_target(url, duration)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    deadline = time.perf_counter() + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while time.perf_counter() < deadline and (max_requests is None or sent < max_requests):
            sent += 1
            start = time.perf_counter()
            try:
                async with session.get(url, headers=headers) as response:
                    await response.read()  # the latency of a request includes its body
                    latencies.append(time.perf_counter() - start)
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Each request is bounded by REQUEST_TIMEOUT; this bound holds even if that one fails.
        async with asyncio.timeout(duration + REQUEST_TIMEOUT + 1):
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    requests = sum(statuses.values())
    ok = sum(n for status, n in statuses.items() if status.isdigit() and 200 <= int(status) < 300)
    return LoadResult(
        requests=requests,
        errors=requests - ok,
        rps=len(latencies) / elapsed,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        statuses=statuses,
    )


def have_wrk() -> bool:
    return shutil.which(WRK) is not None


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _find(pattern: str, text: str) -> re.Match[str]:
    if match := re.search(pattern, text, re.M):
        return match
    raise ValueError(f"wrk output has no match for {pattern!r}:\n{text}")


def _to_ms(text: str) -> float:
    number, unit = _find(r"^([\d.]+)([a-z]+)$", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> LoadResult:
    """Read `wrk --latency` output; wrk counts 3xx as success, so `errors` is its non-2xx/3xx
    responses plus socket errors."""
    distribution = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    if distribution.keys() != {"50", "99"}:
        raise ValueError(f"wrk output has no latency distribution (run it with --latency):\n{output}")
    requests = int(_find(r"^\s+(\d+) requests in", output).group(1))
    rps = float(_find(r"^Requests/sec:\s+([\d.]+)", output).group(1))
    statuses: Counter[str] = Counter()
    if socket := re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        for kind, count in zip(("connect", "read", "write", "timeout"), socket.groups(), strict=True):
            statuses[f"socket {kind}"] += int(count)
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        statuses["non-2xx/3xx"] += int(non_2xx.group(1))
    errors = statuses.total()
    statuses["2xx/3xx"] = requests - statuses["non-2xx/3xx"]
    return LoadResult(
        requests=requests,
        errors=errors,
        rps=rps,
        p50_ms=_to_ms(distribution["50"]),
        p99_ms=_to_ms(distribution["99"]),
        statuses=+statuses,
    )


def run_wrk(
    url: str,
    headers: Mapping[str, str] | None = None,
    connections: int = 32,
    duration: float = 5.0,
    threads: int = 1,
    script: str | None = None,
) -> LoadResult:
    """Run wrk on `url` for `duration` seconds (whole, at least 1); `script` is a wrk Lua file."""
    _check_target(url, duration)
    if not have_wrk():
        raise FileNotFoundError(f"{WRK} not found: apt-get install -y wrk")
    seconds = max(1, round(duration))
    cmd = [WRK, "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    cmd += ["--timeout", f"{REQUEST_TIMEOUT:.0f}s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", script]
    done = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + REQUEST_TIMEOUT + 5
    )
    return parse_wrk(done.stdout)


def print_table(rows: Sequence[tuple[str, LoadResult]], baseline: str) -> None:
    """Print requests/s, p50, p99 and errors per row, with each row's requests/s as a ratio of the
    baseline row's (measured in the same run, so the machine's mood cancels out)."""
    results = dict(rows)
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not one of the rows {list(results)}")
    base_rps = results[baseline].rps
    width = max(len(name) for name, _ in rows)
    print(
        f"{'':<{width}}  {'req/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}  {'errors':>7}  {'vs ' + baseline:>12}"
    )
    for name, result in rows:
        ratio = f"{result.rps / base_rps:.2f}x" if base_rps else "n/a"
        print(
            f"{name:<{width}}  {result.rps:>10,.0f}  {result.p50_ms:>8.2f}  {result.p99_ms:>8.2f}"
            f"  {result.errors:>7}  {ratio:>12}"
        )
