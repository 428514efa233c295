"""A Redis that hangs (`kill -STOP`: a frozen host, a partition) under `unigate worker` and the CLI: every
call is bounded by UNIGATE_REDIS_TIMEOUT; the worker waits for Redis saying so once, still stops when told,
loses no batch, and goes on once Redis answers; a CLI change is saved and the command ends."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.schemes import service
from gateway.store import manage
from gateway.store.scheme_tables import SchemeRun
from tests.schemes.conftest import FINAL, runs_of, unigate, until, worker_env, worker_processes
from tests.services import free_port, frozen, log_entries, own_redis, run_process, said

TIMEOUT = "0.25"  # UNIGATE_REDIS_TIMEOUT of the processes under test
AWAY = "Redis unreachable: the scheme queue waits for it"
BACK = "Redis answers again: the scheme queue goes on"


def _in_small_batches(definition: dict[str, Any]) -> None:
    definition["target"] = {**definition["target"], "batch_size": 10}


async def test_a_worker_waits_out_a_frozen_redis_stops_when_told_and_no_batch_is_lost(
    flow_factory: Any, tmp_path: Path
) -> None:
    flow = await flow_factory(300, tweak=_in_small_batches)
    target = flow.sims.target
    target.delay = 0.1  # a slow target: the run is well under way, not over, each time Redis freezes
    expected = flow.expected_tids()
    with own_redis(tmp_path) as (url, pid):
        env = worker_env(
            flow, url, UNIGATE_REDIS_TIMEOUT=TIMEOUT, UNIGATE_WORKER_CONCURRENCY="2", UNIGATE_LOG_LEVEL="INFO"
        )
        first_log, second_log = tmp_path / "worker-0.log", tmp_path / "second.log"
        with worker_processes(env, 1, tmp_path) as [first]:
            run_id = await service.run_now(flow.name, full=True)

            async def pushed(n: int) -> bool:
                return sum(target.pushes.values()) >= n

            await until(lambda: pushed(20), 30, "the run to push 20 trades")
            with frozen(pid):
                await until(lambda: _true(said(first_log, AWAY)), 10, "the worker to notice Redis is away")
                assert first.health()["driving"] == [run_id]  # its own loop answers meanwhile
                # The batches in hand are pushed, and no more are taken while Redis cannot hand them out.
                await asyncio.sleep(1)
                held = sum(target.pushes.values())
                await asyncio.sleep(1)
                assert sum(target.pushes.values()) == held
            # Redis is back: the same worker, no restart, goes on with the same run.
            await until(lambda: pushed(held + 20), 30, "the run to go on after Redis returned")
            assert said(first_log, BACK)
            assert (await _run(run_id))["status"] == "running"

            # Told to stop while Redis hangs again, the worker ends in time and cleanly (it would wait for
            # a reply for ever without a timeout), leaving what it held to be taken over.
            with frozen(pid):
                await until(lambda: _away_again(first_log), 10, "the worker to notice Redis is away again")
                first.proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(first.proc.wait, 30)
            assert code == 0, first_log.read_text()[-3000:]

        target.delay = 0.0
        # Another worker takes the run over and finishes it: nothing the stopped one held is lost.
        port = free_port()
        with run_process(
            [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
            env=env,
            log_path=second_log,
            ready_url=f"http://127.0.0.1:{port}/healthz",
        ):
            await until(lambda: _final(run_id), 60, "the run to end")

    run = await _run(run_id)
    assert run["status"] == "succeeded", run["error"]
    assert [r["id"] for r in await runs_of(flow.scheme_id)] == [run_id]
    assert run["succeeded"] + run["skipped"] == run["total"] == len(expected)
    assert set(target.pushes) == expected
    assert [tid for tid, n in target.pushes.items() if n != 1] == []  # and none pushed twice
    # Said once per freeze, not once per call or per retry, and never as a traceback.
    assert len(said(first_log, AWAY)) == 2 and "TimeoutError" in said(first_log, AWAY)[0]["message"]
    assert len(said(first_log, BACK)) == 1
    for log in (first_log, second_log):
        entries = log_entries(log)
        assert not [e for e in entries if "exception" in e or "Traceback" in str(e)], log.read_text()[-3000:]


async def test_a_cli_change_with_a_frozen_redis_is_saved_and_the_command_ends(
    flow_factory: Any, tmp_path: Path
) -> None:
    flow = await flow_factory(1)
    consumer = await manage.create_consumer("redis-hang-cli", by_admin=True)
    key = await manage.create_key(consumer, name="to revoke")
    key_id = next(row["id"] for row in await manage.list_keys(consumer))
    with own_redis(tmp_path) as (url, pid):
        env = {**flow.env, "REDIS_URL": url, "UNIGATE_REDIS_TIMEOUT": TIMEOUT}
        with frozen(pid):
            # Bounded by the helper's own 60 s: without a timeout the command waits for Redis for ever.
            done = await unigate(env, "keys", "revoke", str(key_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"key {key_id} revoked"
    assert "config version not announced; the nodes pick it up at their next poll" in done.stderr
    assert key.key not in done.stdout + done.stderr
    assert [row["revoked_at"] is not None for row in await manage.list_keys(consumer)] == [True]


async def _run(run_id: int) -> dict[str, Any]:
    row = await SchemeRun.select().where(SchemeRun.id == run_id).first()
    assert row is not None
    return dict(row)


async def _final(run_id: int) -> bool:
    return (await _run(run_id))["status"] in FINAL


async def _away_again(log: Path) -> bool:
    return len(said(log, AWAY)) == 2


async def _true(value: object) -> bool:
    return bool(value)
