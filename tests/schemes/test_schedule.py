"""Schedules: an interval or cron schedule fires when due, once, and never while stopped (time injected);
a worker process runs a started scheme on its schedule and not a stopped one; two worker processes
fire a due schedule exactly once; a bad schedule is refused when the scheme is saved, naming the field."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.errors import InvalidParameter
from gateway.schemes import driver, service
from gateway.store.scheme_tables import Scheme, SchemeRun
from tests.schemes.conftest import FINAL, Flow, runs_of, unigate, until, worker_env, worker_processes


def schedule(text: str, timezone: str | None = None) -> Callable[[dict[str, Any]], None]:
    def tweak(definition: dict[str, Any]) -> None:
        definition["schedule"] = text
        if timezone is not None:
            definition["timezone"] = timezone

    return tweak


async def fired(flow: Flow, now: float) -> list[int]:
    """What one worker's scheduler pass at `now` queued for this flow's scheme."""
    created = await driver.schedule_due(now)
    if not created:
        return []
    rows = await SchemeRun.select(SchemeRun.id).where(
        SchemeRun.id.is_in(created), SchemeRun.scheme == flow.scheme_id
    )
    return [row["id"] for row in rows]


async def next_run_at(name: str) -> float:
    return float((await service.get_scheme(name))["next_run_at"])


async def status(run_id: int) -> str:
    row = await SchemeRun.select(SchemeRun.status).where(SchemeRun.id == run_id).first()
    return str(row["status"]) if row else ""


async def test_an_interval_fires_when_due_once_and_never_while_stopped(flow_factory):
    flow = await flow_factory(10, tweak=schedule("every 30s"))
    # Saved with a schedule but never started: however late it gets, nothing fires.
    assert await fired(flow, time.time() + 10**6) == []

    before = time.time()
    await service.start(flow.name)
    due = await next_run_at(flow.name)
    assert before + 30 <= due <= time.time() + 30
    assert await fired(flow, due - 1) == []
    first = await fired(flow, due)
    assert len(first) == 1 and await status(first[0]) == "queued"
    # A second worker looking at the same moment finds it fired already.
    assert await fired(flow, due) == []
    # The next time comes while that run still waits for a worker: no second run beside it.
    assert await next_run_at(flow.name) == due + 30
    assert await fired(flow, due + 30) == []

    summary = await flow.run(run_id=first[0])
    assert (summary["trigger"], summary["status"]) == ("schedule", "succeeded")
    assert summary["succeeded"] == len(flow.expected_tids())
    second = await fired(flow, due + 60)
    assert len(second) == 1

    # Stopped: the run it had queued is stopped with it, and the schedule never fires again.
    await service.stop(flow.name)
    assert await status(second[0]) == "stopped"
    assert await fired(flow, due + 10**6) == []
    assert [run["trigger"] for run in await runs_of(flow.scheme_id)] == ["schedule", "schedule"]


async def test_an_interval_keeps_to_its_slots_when_fired_late_or_after_a_downtime(flow_factory):
    flow = await flow_factory(10, tweak=schedule("every 30s"))
    await service.start(flow.name)
    due = await next_run_at(flow.name)
    # Starting it again, or editing what is not its schedule, does not push its next time back.
    await service.start(flow.name)
    definition = (await service.get_scheme(flow.name))["definition"]
    await service.put_scheme(flow.name, {**definition, "retry": {"attempts": 2}}, description="edited")
    assert await next_run_at(flow.name) == due
    # A worker busy elsewhere fires it 7 s late: the next slot is still 30 s after the due one, so late
    # fires do not add up to a schedule that drifts.
    first = await fired(flow, due + 7)
    assert len(first) == 1
    assert await next_run_at(flow.name) == due + 30
    await flow.run(run_id=first[0])
    # No worker ran for three slots: one run, not one per missed slot, and the next slot is on the grid.
    assert len(await fired(flow, due + 30 + 95)) == 1
    assert await next_run_at(flow.name) == due + 150
    await service.stop(flow.name)


async def test_a_cron_schedule_fires_at_its_times_in_the_schemes_timezone(flow_factory):
    flow = await flow_factory(10, tweak=schedule("0 9 * * *"))
    await service.start(flow.name)
    due = await next_run_at(flow.name)
    # 09:00 where the shops are (Asia/Shanghai unless the scheme says otherwise), within the next day.
    assert datetime.fromtimestamp(due, ZoneInfo("Asia/Shanghai")).strftime("%H:%M:%S") == "09:00:00"
    assert 0 < due - time.time() <= 86400
    assert await fired(flow, due - 1) == []
    assert len(await fired(flow, due)) == 1
    assert await next_run_at(flow.name) == due + 86400

    definition = (await service.get_scheme(flow.name))["definition"]
    await service.put_scheme(flow.name, {**definition, "schedule": "*/15 * * * *", "timezone": "UTC"})
    await service.start(flow.name)
    due = await next_run_at(flow.name)
    assert datetime.fromtimestamp(due, ZoneInfo("UTC")).minute % 15 == 0 and due % 900 == 0
    await service.stop(flow.name)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"schedule": "0 9 * *"}, "schedule"),
        ({"schedule": "every 0s"}, "schedule"),
        ({"schedule": "every 5 minutes"}, "schedule"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
async def test_a_bad_schedule_is_refused_when_the_scheme_is_saved(flow_factory, changes, field):
    flow = await flow_factory(5)
    definition = (await service.get_scheme(flow.name))["definition"]
    with pytest.raises(InvalidParameter) as refused:
        await service.put_scheme(flow.name, {**definition, **changes})
    assert refused.value.field == field
    # Nothing was saved: the scheme keeps its schedule.
    assert (await service.get_scheme(flow.name))["definition"]["schedule"] == definition["schedule"]


async def test_the_admin_api_refuses_a_bad_cron_and_a_start_without_schedule(
    admin_http: httpx.AsyncClient, flow_factory
):
    flow = await flow_factory(5)
    scheme = (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()
    bad = await admin_http.put(
        f"/admin/api/schemes/{flow.name}",
        json={"definition": {**scheme["definition"], "schedule": "*/5 25 * * *"}},
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (bad.json()["code"], bad.json()["field"]) == ("invalid_parameter", "schedule")
    assert "*/5 25 * * *" in bad.json()["detail"]

    unscheduled = {key: value for key, value in scheme["definition"].items() if key != "schedule"}
    saved = await admin_http.put(f"/admin/api/schemes/{flow.name}", json={"definition": unscheduled})
    assert saved.status_code == 200, saved.text
    start = await admin_http.post(f"/admin/api/schemes/{flow.name}/start")
    assert (start.status_code, start.json()["field"]) == (400, "schedule")
    assert (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["enabled"] is False


async def _scheduled_runs_finished(scheme_id: int, count: int) -> bool:
    runs = await runs_of(scheme_id)
    return sum(1 for run in runs if run["trigger"] == "schedule" and run["status"] in FINAL) >= count


async def _idle(scheme_id: int) -> bool:
    return all(run["status"] in FINAL for run in await runs_of(scheme_id))


async def test_a_worker_runs_a_started_schedule_and_not_a_stopped_one(flow_factory, tmp_path: Path):
    flow = await flow_factory(10, tweak=schedule("every 1s"))
    definition = (await service.get_scheme(flow.name))["definition"]
    never = await service.put_scheme(f"{flow.name}-never", definition)
    later = await service.put_scheme(f"{flow.name}-later", definition)
    env = worker_env(flow)
    with worker_processes(env, 1, tmp_path):
        started = await unigate(env, "scheme", "start", flow.name)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout) == {"name": flow.name, "enabled": True}
        await until(lambda: _scheduled_runs_finished(flow.scheme_id, 2), 30, "two scheduled runs")

        stopped = await unigate(env, "scheme", "stop", flow.name)
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout) == {"name": flow.name, "enabled": False}
        await until(lambda: _idle(flow.scheme_id), 30, "the stopped scheme's last run to end")
        ran = len(await runs_of(flow.scheme_id))

        # Time passes in the worker: a scheme started after the stop, due no sooner than the stopped one
        # would have been, fires and runs...
        await service.start(f"{flow.name}-later")
        await until(lambda: _scheduled_runs_finished(later, 1), 30, "the later scheme's first run")
        await service.stop(f"{flow.name}-later")

    # ...while the stopped scheme ran no more, and the one never started never ran.
    runs = await runs_of(flow.scheme_id)
    assert len(runs) == ran >= 2
    assert await runs_of(never) == []
    assert {run["trigger"] for run in runs} == {"schedule"}
    # Each run read from the checkpoint the one before left: the first pushed every record, the next
    # found them unchanged.
    assert runs[0]["status"] == runs[1]["status"] == "succeeded"
    assert runs[0]["succeeded"] == len(flow.expected_tids()) and runs[1]["succeeded"] == 0
    assert sum(flow.sims.target.pushes.values()) == 2 * len(flow.expected_tids())  # flow, then `later`


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_two_workers_fire_a_due_schedule_exactly_once(
    flow_factory, redis_url: str, tmp_path: Path, database: str, request: pytest.FixtureRequest
):
    database_url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    flow = await flow_factory(5, database_url=database_url, tweak=schedule("every 1h"))
    definition = (await service.get_scheme(flow.name))["definition"]
    ids = [await service.put_scheme(f"{flow.name}-{n}", definition, enabled=True) for n in range(8)]

    async def seen() -> bool:
        return await Scheme.count().where(Scheme.id.is_in(ids), Scheme.next_run_at.is_null()) == 0

    async def done() -> bool:
        finished = await SchemeRun.count().where(
            SchemeRun.scheme.is_in(ids), SchemeRun.status.is_in(list(FINAL))
        )
        return finished >= len(ids)

    with worker_processes(worker_env(flow, redis_url), 2, tmp_path):
        # The workers have seen the schedules: each first fires in an hour...
        await until(seen, 30, "the workers to read the schedules")
        assert await SchemeRun.count().where(SchemeRun.scheme.is_in(ids)) == 0
        # ...then time jumps: all eight are due at once, for both workers.
        await Scheme.update({Scheme.next_run_at: time.time() - 1}).where(Scheme.id.is_in(ids))
        await until(done, 60, "every due schedule's run to end")
        runs = await SchemeRun.select().where(SchemeRun.scheme.is_in(ids))

    assert sorted(run["scheme"] for run in runs) == sorted(ids)  # one run per schedule, not two
    assert {(run["trigger"], run["status"]) for run in runs} == {("schedule", "succeeded")}
    assert len({run["owner"] for run in runs}) == 2  # both workers were at work
    assert all(at > time.time() + 3000 for at in (await next_run_ats(ids)))


async def next_run_ats(ids: list[int]) -> list[float]:
    rows = await Scheme.select(Scheme.next_run_at).where(Scheme.id.is_in(ids))
    return [float(row["next_run_at"]) for row in rows]
