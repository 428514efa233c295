"""The backend caps of the policies issue hold for workers too: a target connection capped at N calls a
second never receives more than N in any second, with two worker processes pushing through one Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.schemes import service
from gateway.store import manage
from gateway.store.crypto import Vault
from tests.policies.backends import most_in_any_window
from tests.schemes.conftest import FINAL, runs_of, until, worker_env, worker_processes

QPS = 10


def _small_batches(definition: dict[str, Any]) -> None:
    definition["target"] = {**definition["target"], "batch_size": 3}  # many trade_push calls


async def test_a_target_capped_at_n_calls_a_second_never_gets_more_from_two_workers(
    flow_factory, redis_url: str, tmp_path: Path
):
    flow = await flow_factory(40, tweak=_small_batches)
    await manage.put_connection(
        Vault(flow.settings.secret_key),
        name=flow.connections["target"],
        system="wangdiantong",
        base_url=flow.sims.target_url,
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
        options={"qps": QPS},
    )
    target = flow.sims.target
    env = worker_env(flow, redis_url, UNIGATE_WORKER_CONCURRENCY="3")
    with worker_processes(env, 2, tmp_path) as workers:
        run_id = await service.run_now(flow.name)

        async def finished() -> bool:
            return any(
                run["id"] == run_id and run["status"] in FINAL for run in await runs_of(flow.scheme_id)
            )

        await until(finished, 60, "the run to end")
        batches = [worker.health()["batches"] for worker in workers]

    run = next(run for run in await runs_of(flow.scheme_id) if run["id"] == run_id)
    assert run["status"] == "succeeded", run
    assert set(target.pushes) == flow.expected_tids(), {k: run[k] for k in ("total", "succeeded", "skipped")}
    assert [tid for tid, n in target.pushes.items() if n != 1] == []
    # Both processes pushed, and together they kept to the cap the connection sets, measured where the
    # calls arrive.
    assert all(n > 0 for n in batches), batches
    assert len(target.calls) > 2 * QPS
    assert most_in_any_window(target.calls, 1.0) <= QPS, sorted(target.calls)
    # The cap was the limit, not the load: it was reached.
    assert most_in_any_window(target.calls, 1.0) == QPS
