"""Schemes at scale on Redis: a worker killed mid-run loses and duplicates nothing, high priority goes
first, and the source stops reading while the queue is at its bound."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

from gateway.schemes import service
from gateway.schemes.queue import RedisQueue
from gateway.schemes.worker import Worker, services
from gateway.store.scheme_tables import RecordResult, SchemeRun
from tests.services import free_port, run_process

FINAL = ("succeeded", "partial", "failed", "stopped")


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _status(run_id: int) -> str:
    row = await SchemeRun.select(SchemeRun.status).where(SchemeRun.id == run_id).first()
    return str(row["status"]) if row else ""


def _worker_factory(flow: Any, redis_url: str, tmp_path: Path, **extra: str) -> Callable[[str], Any]:
    """Starts `unigate worker` processes with short leases, so a killed one's batches are taken over fast."""
    env = {
        **flow.env,
        "REDIS_URL": redis_url,
        "UNIGATE_SCHEME_LEASE_SECONDS": "2",
        "UNIGATE_SCHEME_CLAIM_IDLE_SECONDS": "2",
        "UNIGATE_SCHEME_POLL_SECONDS": "0.1",
        **extra,
    }

    def worker(log: str) -> Any:
        port = free_port()
        return run_process(
            [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
            env=env,
            log_path=tmp_path / log,
            ready_url=f"http://127.0.0.1:{port}/healthz",
        )

    return worker


async def test_a_worker_killed_mid_run_loses_nothing_and_pushes_nothing_twice(
    flow_factory, redis_url, tmp_path
):
    flow = await flow_factory(400)
    target = flow.sims.target
    target.delay = 0.2  # each trade_push takes a while, so the kill lands while batches are in flight
    run_id = await service.run_now(flow.name)
    worker = _worker_factory(flow, redis_url, tmp_path, UNIGATE_WORKER_CONCURRENCY="3")

    with worker("first.log") as first:
        await _until(lambda: _pushed(target, 100), 60, "the first worker to push 100 trades")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert await _status(run_id) == "running"
    pushed_before_restart = sum(target.pushes.values())
    assert pushed_before_restart < len(flow.expected_tids())

    with worker("second.log"):
        await _until(lambda: _finished(run_id), 90, "the restarted worker to finish the run")

    assert await _status(run_id) == "succeeded"
    assert set(target.pushes) == flow.expected_tids()
    assert [tid for tid, n in target.pushes.items() if n != 1] == []
    statuses = {
        row["status"]
        for row in await RecordResult.select(RecordResult.status).where(RecordResult.run == run_id)
    }
    assert statuses == {"success"}


async def _pushed(target: Any, n: int) -> bool:
    return sum(target.pushes.values()) >= n


async def _finished(run_id: int) -> bool:
    return await _status(run_id) in FINAL


async def test_high_priority_batches_are_worked_before_low_priority_ones(flow_factory, redis_url):
    low = await flow_factory(100, priority="low", redis_url=redis_url, scheme_queue_bound=100)
    high = await flow_factory(100, priority="high", redis_url=redis_url, scheme_queue_bound=100)
    runs = [await service.run_now(low.name), await service.run_now(high.name)]  # low queued first
    async with services(low.settings) as pulling, services(low.settings) as working:
        # One worker only reads the sources into the queue; once all is queued, another works it.
        driver = Worker(pulling, concurrency=0)
        driving = asyncio.create_task(driver.run(schedule=False))

        async def queued() -> bool:
            return all([(await pulling.queue.progress(run)).pull_done for run in runs])

        await _until(queued, 60, "both sources to be read into the queue")
        processor = Worker(working, concurrency=1)
        processing = asyncio.create_task(processor.run(drive=False))
        await _until(lambda: _all_finished(runs), 90, "both runs to finish")
        driver.stop()
        processor.stop()
        await asyncio.gather(driving, processing)
    assert set(high.sims.target.pushes) == high.expected_tids()
    assert set(low.sims.target.pushes) == low.expected_tids()
    assert max(high.sims.target.times.values()) < min(low.sims.target.times.values())


async def _all_finished(runs: list[int]) -> bool:
    return all([await _finished(run) for run in runs])


async def test_the_source_stops_reading_while_the_queue_is_at_its_bound(flow_factory, redis_url):
    bound = 3
    flow = await flow_factory(400, redis_url=redis_url, scheme_queue_bound=bound)
    flow.sims.target.delay = 0.1  # a slow target behind a fast source
    run_id = await service.run_now(flow.name)
    client = aioredis.Redis.from_url(redis_url)
    depths: list[int] = []

    async def sample() -> None:
        while True:
            depths.append(sum([await client.xlen(RedisQueue.stream(p)) for p in ("high", "normal", "low")]))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        async with services(flow.settings) as held:
            worker = Worker(held, concurrency=2)
            await asyncio.wait_for(worker.run(schedule=False, until_run=run_id), 120)
    finally:
        sampler.cancel()
        await client.aclose()
    assert await _status(run_id) == "succeeded"
    assert set(flow.sims.target.pushes) == flow.expected_tids()
    pulled = (await SchemeRun.select(SchemeRun.pulled).where(SchemeRun.id == run_id).first())["pulled"]
    assert pulled == len(flow.expected_tids())
    # The queue filled up to its bound and never beyond, although the source could have been read at once.
    assert max(depths) == bound
    assert msgspec.json.encode(sorted(set(depths))) != b"[0]"


async def test_a_run_keeps_the_definition_it_started_with_when_the_scheme_is_edited_mid_run(
    flow_factory, redis_url, tmp_path
):
    flow = await flow_factory(150)
    target = flow.sims.target
    target.delay = 0.1
    scheme = await service.get_scheme(flow.name)
    run_id = await service.run_now(flow.name)
    worker = _worker_factory(flow, redis_url, tmp_path)

    with worker("first.log") as first:
        await _until(lambda: _pushed(target, 30), 60, "the first worker to push 30 trades")
        # The admin saves a new mapping version and points the scheme at it while the run is going...
        edited = await service.get_mapping(scheme["definition"]["mapping"]["name"])
        spec = {**edited["spec"], "fields": {**edited["spec"]["fields"], "buyer_message": {"const": "v2"}}}
        saved = await service.save_mapping(spec, comment="edited mid-run")
        await service.put_scheme(flow.name, {**scheme["definition"], "mapping": saved})
        # ...and the worker driving it dies; the one that takes over reads the scheme after the edit.
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    with worker("second.log"):
        await _until(lambda: _finished(run_id), 90, "the second worker to finish the run")

    assert await _status(run_id) == "succeeded"
    # The whole run used the version it started with: nothing pushed twice, nothing with the edit.
    assert set(target.pushes) == flow.expected_tids()
    assert [tid for tid, n in target.pushes.items() if n != 1] == []
    assert "v2" not in {trade.trade.get("buyer_message") for trade in target.state.pushed.values()}
    # The edit is for the runs after it: read again in full, every record maps to new content and is pushed.
    following = await flow.run(full=True)
    assert following["succeeded"] == len(flow.expected_tids())
    assert {trade.trade.get("buyer_message") for trade in target.state.pushed.values()} == {"v2"}
