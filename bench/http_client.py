"""The way out's HTTP client against aiohttp's, in one run: the same signed form POSTed to nginx serving a
recorded Wangdiantong answer (5 stockouts, 22 KB), one call at a time and 32 at once; CPU per call.

    .venv/bin/python bench/http_client.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop

# Run as a script, this folder comes first on sys.path; the project is installed, so import it from there.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway_chain import nginx, record_answer  # noqa: E402
from gateway.httpclient import Pool  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PARAMS = {
    "is_by_modified": "1",
    "start_time": "2026-03-01 00:00:00",
    "end_time": "2026-03-30 23:59:59",
    "page_no": "0",
    "page_size": "5",
    "sid": "bench",
    "appkey": "bench",
    "timestamp": "1700000000",
    "sign": "0123456789abcdef0123456789abcdef",
}


async def _cpu_per_call(call: Callable[[], Awaitable[int]], calls: int, concurrency: int) -> float:
    for _ in range(100):  # warm: connections, caches
        await call()
    per_worker = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / (per_worker * concurrency) * 1e6


async def run(url: str, size: int, calls: int) -> list[tuple[str, float, float]]:
    body = urllib.parse.urlencode(PARAMS).encode()
    session = aiohttp.ClientSession()
    pool = Pool()

    async def with_aiohttp() -> int:
        async with session.post(url, data=body, headers=FORM) as response:
            return len(await response.read())

    async def with_pool() -> int:
        async with asyncio.timeout(10):
            return len((await pool.request("POST", url, headers=FORM, body=body)).body)

    assert await with_aiohttp() == size and await with_pool() == size
    rows = []
    for name, call in (("aiohttp ClientSession", with_aiohttp), ("gateway.httpclient.Pool", with_pool)):
        rows.append((name, await _cpu_per_call(call, calls, 1), await _cpu_per_call(call, calls, 32)))
    await session.close()
    await pool.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unigate-bench-") as tmp:
        workdir = Path(tmp)
        answer = record_answer(workdir)
        size = answer.stat().st_size
        with nginx(workdir, answer) as (upstream, _proxy):
            rows = uvloop.run(run(upstream + "/openapi2/stockout_order_query_trade.php", size, args.calls))
    base = rows[0]
    print(f"\nPOST a signed form, read a {size:,}-byte answer; CPU per call, uvloop")
    print(f"{'':26}{'one at a time':>16}{'32 at once':>14}{'vs aiohttp (32)':>18}")
    for name, alone, together in rows:
        print(f"{name:26}{alone:13.1f} us{together:11.1f} us{base[2] / together:17.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
