"""A quota counter that does not exist yet (Redis lost, a quota newly set, a node counting alone while Redis
is away) starts from the metered use of its day, not from zero: real gateway processes, a real redis-server,
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from piccolo.engine.base import Engine
from redis.asyncio import Redis

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.usage_tables import UsageDaily
from policies.counters import Check, RedisCounters
from policies.metering import UsageRecorder
from policies.quota import Calendar
from policies.quota_seed import QuotaSeeds, refresh_seconds
from tests.conftest import SECRET_KEY, Simulators, bound_store, gateway_env, migrate
from tests.policies.backends import clients, gateway_processes
from tests.policies.p1_support import application, until
from tests.services import own_redis

FLUSH_SECONDS = 0.1  # metering writes every 0.1 s, so the nodes read the seeds every 1.5 s
SEEDS_READ = 2 * refresh_seconds(FLUSH_SECONDS)  # a node has read the seeds again by then
FAST = {"UNIGATE_METERING_FLUSH_SECONDS": str(FLUSH_SECONDS)}


@pytest.fixture(scope="module")
def migrated(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("quota-seed"), DATABASE_URL=module_database_url)
    migrate(env)
    return env


@pytest.fixture
async def engine(migrated: dict[str, str], simulators: Simulators) -> AsyncIterator[Engine]:
    """The module's database bound for one test, with the simulators as the apps' default connections."""
    async with bound_store(migrated) as engine:
        for name, system, url, credentials in (
            ("wdt-demo", "wangdiantong", simulators.wdt.url, wdt_sim.DEFAULT_CREDENTIALS),
            ("kd100-demo", "kuaidi100", simulators.kd100.url, kd100_sim.DEFAULT_CREDENTIALS),
        ):
            await manage.put_connection(
                Vault(SECRET_KEY),
                name=name,
                system=system,
                base_url=url,
                credentials=dict(credentials),
                open=True,
            )
        yield engine


async def nodes(
    stack: contextlib.AsyncExitStack, env: dict[str, str], log_dir: Path, count: int, key: str
) -> tuple[str, int, list[httpx.AsyncClient]]:
    """A redis-server of the test's own, `count` gateway processes on it: its URL, its pid, their clients."""
    redis_url, redis_pid = stack.enter_context(own_redis(log_dir))
    urls = stack.enter_context(gateway_processes(env, count, log_dir, REDIS_URL=redis_url, **FAST))
    return redis_url, redis_pid, await clients(stack, urls, key)


async def stockouts(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/v1/stockouts", params={"limit": 1})


def outcome(answers: list[httpx.Response]) -> list[tuple[int, str | None]]:
    """What a caller sees of each answer: its status and RateLimit-Remaining."""
    return [(a.status_code, a.headers.get("ratelimit-remaining")) for a in answers]


async def written(consumer: int, calls: int) -> None:
    """Wait until the nodes have written `calls` admitted calls of `consumer` (and no more)."""

    async def check() -> bool:
        rows = await UsageDaily.select(UsageDaily.admitted).where(UsageDaily.consumer == consumer)
        return sum(row["admitted"] for row in rows) == calls

    await until(check, within=10, what=f"{calls} admitted calls metered")


async def metered(consumer: int, calls: int) -> None:
    """Wait until the nodes have written `calls` admitted calls of `consumer`, then until they read them."""
    await written(consumer, calls)
    await asyncio.sleep(SEEDS_READ)  # the nodes' next seed refresh (it has no outward sign to wait on)


async def test_a_flushed_redis_counts_on_from_the_metered_use(
    engine: Engine, migrated: dict[str, str], tmp_path: Path
) -> None:
    consumer, key, _ = await application({"quotas": {"per_day": 5}}, apis=("stockouts",))
    async with contextlib.AsyncExitStack() as stack:
        redis_url, _, (http,) = await nodes(stack, migrated, tmp_path, 1, key)
        before = [await stockouts(http) for _ in range(3)]
        await metered(consumer, 3)
        redis = Redis.from_url(redis_url)
        await redis.flushall()  # every counter gone, as after a restart without persistence
        await redis.aclose()
        after = [await stockouts(http) for _ in range(3)]
        await written(consumer, 5)  # the refused call is metered, but not as quota used
    assert outcome(before) == [(200, "4"), (200, "3"), (200, "2")], [a.text[:200] for a in before]
    # Counted on from the 3 used, not from 0: two more, then the quota is refused.
    assert outcome(after) == [(200, "1"), (200, "0"), (429, "0")], [a.text[:200] for a in after]
    assert after[2].json()["code"] == "quota_exceeded"


async def test_a_quota_set_below_todays_calls_refuses_the_next_call(
    engine: Engine, migrated: dict[str, str], tmp_path: Path
) -> None:
    _, key, plan = await application({}, apis=("stockouts",))  # no quota yet
    async with contextlib.AsyncExitStack() as stack:
        _, _, (http,) = await nodes(stack, migrated, tmp_path, 1, key)
        unlimited = [await stockouts(http) for _ in range(4)]
        # Not waiting for metering: the node counts the calls it has not written yet too.
        await policy_manage.update_plan(plan, config={"quotas": {"per_day": 3}})
        answers: list[httpx.Response] = []

        async def quota_applies() -> bool:
            # A call before the node has the change is unlimited: it carries no RateLimit headers.
            answers.append(await stockouts(http))
            return "ratelimit-limit" in answers[-1].headers

        await until(quota_applies, within=10, what="the new quota")
    assert [a.status_code for a in unlimited] == [200] * 4, [a.text[:200] for a in unlimited]
    first = answers[-1]  # the first call the quota counted
    assert (first.status_code, first.json()["code"]) == (429, "quota_exceeded"), first.text[:300]
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("3", "0")


async def test_with_redis_away_each_node_counts_on_from_the_metered_use(
    engine: Engine, migrated: dict[str, str], tmp_path: Path
) -> None:
    consumer, key, _ = await application({"quotas": {"per_day": 3}}, apis=("stockouts",))
    async with contextlib.AsyncExitStack() as stack:
        _, redis_pid, (first, second) = await nodes(stack, migrated, tmp_path, 2, key)
        used = [await stockouts(first), await stockouts(second)]
        await metered(consumer, 2)
        os.kill(redis_pid, signal.SIGKILL)  # Redis lost: each node counts alone
        alone = [[await stockouts(http) for _ in range(2)] for http in (first, second)]
    assert outcome(used) == [(200, "2"), (200, "1")], [a.text[:200] for a in used]
    # Each node starts its own count at the 2 used: one more call each (not 3 each), then refused.
    for answers in alone:
        assert outcome(answers) == [(200, "0"), (429, "0")], [a.text[:200] for a in answers]
        assert answers[1].json()["code"] == "quota_exceeded"


async def test_two_nodes_starting_one_counter_at_once_start_it_once(redis_url: str) -> None:
    """The seed goes in inside the script that reads the counter: two nodes' first calls at the same
    moment, each carrying the seed 7, leave 9 (7 + their 2 calls), not 14 or 16."""
    clients_ = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        nodes = [RedisCounters(client) for client in clients_]
        check = (Check.calendar("QUOTA/1/orders/day/2026-03-01", 10, 2e9, "10 calls per day", 1e9, seed=7),)
        verdicts = await asyncio.gather(*(node.acquire(check) for node in nodes))
        assert sorted(v.counts[0].used for v in verdicts) == [7, 8]
        assert all(v.allowed for v in verdicts)
        assert int(await clients_[0].get("LIMITS:QUOTA/1/orders/day/2026-03-01")) == 9
        for node in nodes:
            await node.aclose()
    finally:
        for client in clients_:
            await client.aclose()


async def test_the_seeds_are_the_admitted_calls_of_the_day_and_the_days_of_the_month(engine: Engine) -> None:
    """What a node reads: today's admitted calls for the day, the month's days summed for the month, the
    previous month's and the refused calls left out, and what the node has not written yet added."""
    consumer, _, _ = await application({"quotas": {"per_day": 100}}, apis=("stockouts",))
    rows = {date(2026, 2, 28): (40, 40), date(2026, 3, 1): (5, 9), date(2026, 3, 10): (7, 7)}
    rows[date(2026, 3, 15)] = (3, 20)  # (admitted, calls): 17 of today's calls were refused
    await UsageDaily.insert(
        *(
            UsageDaily(bucket=f"{consumer}:stockouts:{day}", consumer=consumer, api="stockouts", day=day,
                       admitted=admitted, calls=calls)
            for day, (admitted, calls) in rows.items()
        )
    )  # fmt: skip
    now = datetime(2026, 3, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    recorder = UsageRecorder("Asia/Shanghai", 5)
    recorder.admit(consumer, "stockouts", now)  # counted here, not written yet
    seeds = QuotaSeeds(recorder, 30, Calendar("Asia/Shanghai").dates, lambda: now)
    await seeds.refresh()
    subscription = (str(consumer), "stockouts")
    assert seeds.seed(subscription, "day", "2026-03-15") == 3 + 1
    assert seeds.seed(subscription, "month", "2026-03") == 5 + 7 + 3 + 1
    assert seeds.seed(subscription, "day", "2026-03-16") == 0  # a day the seeds were not read in
    assert seeds.seed((str(consumer), "orders"), "month", "2026-03") == 0
