"""Stopping a scheme mid-run (`unigate scheme stop` beside a real `unigate worker`): the run ends early
as `stopped`, every record it read is accounted for, the checkpoint stays where it was, nothing is left
in the queue, and when the scheme is started again the rest goes through with nothing pushed twice.
The same for a foreground `unigate scheme run` stopped with Ctrl-C, or killed and then resumed or ended."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.schemes import driver, journal, service
from gateway.schemes.queue import RedisQueue
from gateway.store.scheme_tables import RecordResult
from tests.schemes.conftest import (
    FINAL,
    Flow,
    runs_of,
    unigate,
    until,
    worker_env,
    worker_processes,
)


def _every_second_in_small_batches(definition: dict[str, Any]) -> None:
    definition["schedule"] = "every 1s"
    definition["target"] = {**definition["target"], "batch_size": 10}


async def _nth_run_final(scheme_id: int, n: int) -> bool:
    runs = await runs_of(scheme_id)
    return len(runs) >= n and runs[n - 1]["status"] in FINAL


async def test_stop_ends_a_running_run_and_the_next_start_pushes_the_rest_each_record_once(
    flow_factory, redis_url: str, tmp_path: Path
):
    flow = await flow_factory(250, tweak=_every_second_in_small_batches)
    target = flow.sims.target
    # A slow target while the stop is on its way, so it lands with most of the source still unread (the
    # bound lets the source be read only a page, 100 records, ahead of the pushes).
    target.delay = 0.2
    expected = flow.expected_tids()
    env = worker_env(flow, redis_url, UNIGATE_SCHEME_QUEUE_BOUND="2", UNIGATE_WORKER_CONCURRENCY="2")
    queue = aioredis.Redis.from_url(redis_url)
    try:
        with worker_processes(env, 1, tmp_path):
            await service.start(flow.name)

            async def pushing() -> bool:
                return sum(target.pushes.values()) >= 10

            await until(pushing, 30, "the scheduled run to push 10 trades")
            stopped = await unigate(env, "scheme", "stop", flow.name)
            assert stopped.returncode == 0, stopped.stderr
            assert json.loads(stopped.stdout) == {"name": flow.name, "enabled": False}
            target.delay = 0.0
            await until(lambda: _nth_run_final(flow.scheme_id, 1), 30, "the stopped run to end")

            first = (await runs_of(flow.scheme_id))[0]
            pushed_before = sum(target.pushes.values())
            assert first["status"] == "stopped"
            # It ended early: part of the source was never read, and what was read was all pushed.
            assert first["pulled"] < len(expected)
            assert first["total"] == first["pulled"] == first["succeeded"] == pushed_before
            results = await RecordResult.select(RecordResult.status).where(RecordResult.run == first["id"])
            assert {row["status"] for row in results} == {"success"}
            # Its window was not finished: the checkpoint did not move, and nothing waits in the queue.
            assert await journal.checkpoint(flow.scheme_id) is None
            assert sum([await queue.xlen(RedisQueue.stream(p)) for p in ("high", "normal", "low")]) == 0
            # Stopped means stopped: the schedule is off.
            scheme = await service.get_scheme(flow.name)
            assert (scheme["enabled"], scheme["next_run_at"], scheme["active_run"]) == (False, None, None)

            await service.start(flow.name)
            await until(lambda: _nth_run_final(flow.scheme_id, 2), 60, "the next scheduled run to end")
            await service.stop(flow.name)
    finally:
        await queue.aclose()

    second = (await runs_of(flow.scheme_id))[1]
    assert (second["trigger"], second["status"]) == ("schedule", "succeeded")
    # The next run read the whole window again: what the stopped run had pushed was found unchanged,
    # the rest was pushed, and the target holds every record exactly once.
    assert second["skipped"] == pushed_before
    assert second["succeeded"] == len(expected) - pushed_before
    assert set(target.pushes) == expected
    assert [tid for tid, n in target.pushes.items() if n != 1] == []
    assert await journal.checkpoint(flow.scheme_id) is not None


def _in_small_batches(definition: dict[str, Any]) -> None:
    definition["target"] = {**definition["target"], "batch_size": 10}


def _foreground_run(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    """`unigate scheme run NAME` as a user starts it in a terminal (Ctrl-C reaches it as SIGINT)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "scheme", "run", name],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def _pushing(flow: Flow, n: int) -> None:
    async def enough() -> bool:
        return sum(flow.sims.target.pushes.values()) >= n

    await until(enough, 60, f"the run to push {n} trades")


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    return await asyncio.to_thread(proc.wait, 60)


async def test_ctrl_c_stops_a_foreground_run_and_the_next_run_pushes_the_rest_once(flow_factory, tmp_path):
    flow = await flow_factory(250, tweak=_in_small_batches)
    flow.sims.target.delay = 0.1
    env = worker_env(flow, UNIGATE_SCHEME_QUEUE_BOUND="2")
    log = tmp_path / "run.log"
    proc = _foreground_run(env, flow.name, log)
    try:
        await _pushing(flow, 10)
        proc.send_signal(signal.SIGINT)
        assert await _exited(proc) == 130, log.read_text()
    finally:
        proc.kill()
    output = log.read_text()
    assert "stopping run" in output and "Traceback" not in output
    (stopped,) = await runs_of(flow.scheme_id)
    # The run ended, as stopped: the scheme is free, its window unfinished, what it read all pushed.
    assert stopped["status"] == "stopped" and f"run {stopped['id']} stopped" in output
    assert (await service.get_scheme(flow.name))["active_run"] is None
    assert await journal.checkpoint(flow.scheme_id) is None
    pushed = sum(flow.sims.target.pushes.values())
    assert stopped["succeeded"] == stopped["total"] == pushed < len(flow.expected_tids())

    flow.sims.target.delay = 0.0
    again = await unigate(env, "scheme", "run", flow.name)
    assert again.returncode == 0, again.stderr
    assert set(flow.sims.target.pushes) == flow.expected_tids()
    assert [tid for tid, n in flow.sims.target.pushes.items() if n != 1] == []


async def test_a_killed_foreground_run_is_ended_by_stop_or_resumed_by_the_next_run(flow_factory, tmp_path):
    flow = await flow_factory(150, tweak=_in_small_batches)
    flow.sims.target.delay = 0.1
    env = worker_env(flow, UNIGATE_SCHEME_QUEUE_BOUND="2")

    async def killed_mid_run(log: Path) -> dict[str, Any]:
        proc = _foreground_run(env, flow.name, log)
        try:
            await _pushing(flow, sum(flow.sims.target.pushes.values()) + 10)
        finally:
            proc.kill()
            await _exited(proc)
        run = (await runs_of(flow.scheme_id))[-1]
        assert run["status"] == "running"  # nothing could say otherwise: the process is gone

        async def abandoned() -> bool:  # its lease runs out (no worker is there to take it over)
            return await driver.orphan(flow.scheme_id, 2.0) is not None

        await until(abandoned, 30, "the killed run's lease to run out")
        return run

    first = await killed_mid_run(tmp_path / "first.log")
    # Stop ends a run whose process is gone, instead of leaving it 'stopping' with the scheme locked.
    stopped = await unigate(env, "scheme", "stop", flow.name)
    assert stopped.returncode == 0, stopped.stderr
    ended = (await runs_of(flow.scheme_id))[-1]
    assert (ended["id"], ended["status"]) == (first["id"], "stopped")
    assert (await service.get_scheme(flow.name))["active_run"] is None

    second = await killed_mid_run(tmp_path / "second.log")
    # The next foreground run goes on with the killed one, instead of refusing to start.
    flow.sims.target.delay = 0.0
    resumed = await unigate(env, "scheme", "run", flow.name)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {second['id']} was left unfinished" in resumed.stderr
    runs = await runs_of(flow.scheme_id)
    assert [run["status"] for run in runs] == ["stopped", "succeeded"]
    assert runs[-1]["total"] == runs[-1]["pulled"] == len(flow.expected_tids())
    assert set(flow.sims.target.pushes) == flow.expected_tids()
    assert [tid for tid, n in flow.sims.target.pushes.items() if n != 1] == []
