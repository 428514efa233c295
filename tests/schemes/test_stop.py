"""Stopping a scheme mid-run (`unigate scheme stop` beside a real `unigate worker`): the run ends early
as `stopped`, every record it read is accounted for, the checkpoint stays where it was, nothing is left
in the queue, and when the scheme is started again the rest goes through with nothing pushed twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.schemes import journal, service
from gateway.schemes.queue import RedisQueue
from gateway.store.scheme_tables import RecordResult
from tests.schemes.conftest import FINAL, runs_of, unigate, until, worker_env, worker_processes


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
