"""policies/counters.py against a real redis-server (and in-process): all-or-nothing, exact, one round trip,
and the same counts as `limits`' own strategies reading the same keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from redis.asyncio import Redis

from policies.counters import Check, Counters, MemoryCounters, RedisCounters
from tests.services import free_port

IDS = ("42", "orders")


class Relay:
    """A TCP relay in front of redis-server that counts what the client writes: one write per round trip."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.writes = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, count: bool) -> None:
            while data := await source.read(65536):
                self.writes += count
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Counters]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    client = Redis.from_url(redis_url)
    yield RedisCounters(client)
    await client.aclose()


def per_minute(limit: int, *, exact: bool = False) -> Check:
    return Check.rate(RateLimitItemPerMinute(limit), IDS, exact=exact, label=f"{limit} calls per minute")


def this_day(limit: int) -> Check:
    now = time.time()
    return Check.calendar("QUOTA/42/orders/day/test", limit, now + 3600, f"{limit} calls per day", now)


async def test_a_request_must_fit_every_counter_and_a_refused_one_consumes_none(counters: Counters) -> None:
    rate, quota = per_minute(5), this_day(3)
    assert [(await counters.acquire([rate, quota])).allowed for _ in range(4)] == [True, True, True, False]
    # The refused fourth call took nothing from the rate limit: 3 used, not 4.
    verdict = await counters.acquire([rate, quota])
    assert not verdict.allowed
    assert [count.used for count in verdict.counts] == [3, 3]
    assert [verdict.remaining(count) for count in verdict.counts] == [2, 0]


@pytest.mark.parametrize("exact", [True, False], ids=["moving-window", "sliding-window"])
async def test_concurrent_requests_admit_exactly_the_limit(counters: Counters, exact: bool) -> None:
    check = per_minute(25, exact=exact)
    verdicts = await asyncio.gather(*(counters.acquire([check]) for _ in range(60)))
    assert sum(v.allowed for v in verdicts) == 25
    assert sorted(v.remaining(v.counts[0]) for v in verdicts if v.allowed) == list(range(25))


async def test_remaining_and_reset_describe_the_window(counters: Counters) -> None:
    check = per_minute(10, exact=True)
    first = await counters.acquire([check])
    assert first.remaining(first.counts[0]) == 9
    assert 59 <= first.counts[0].reset <= 60  # the oldest call leaves the window in a minute
    quota = this_day(10)
    verdict = await counters.acquire([quota], now=time.time())
    assert 3590 < verdict.counts[0].reset <= 3600


@pytest.mark.parametrize("exact", [True, False], ids=["moving-window", "sliding-window"])
async def test_counts_agree_with_limits_reading_the_same_keys(
    redis: Redis, redis_url: str, exact: bool
) -> None:
    """Our script keeps `limits`' Redis layout: its storage reads our counts at the check's key, and we
    count what it adds there."""
    ours = RedisCounters(redis)
    check = per_minute(20, exact=exact)
    storage = RedisStorage(redis_url.replace("redis://", "async+redis://"), implementation="redispy")
    for _ in range(7):
        assert (await ours.acquire([check])).allowed
    for _ in range(3):
        if exact:
            assert await storage.acquire_entry(check.key, 20, 60)
        else:
            assert await storage.acquire_sliding_window_entry(check.key, 20, 60)
    if exact:
        assert (await storage.get_moving_window(check.key, 20, 60))[1] == 10
    else:
        assert (await storage.get_sliding_window(check.key, 60))[2] == 10
    verdict = await ours.acquire([check])
    assert verdict.counts[0].used == 10
    assert verdict.remaining(verdict.counts[0]) == 9


@pytest.mark.parametrize("exact", [True, False], ids=["moving-window", "sliding-window"])
async def test_a_lowered_limit_still_counts_the_calls_already_made(counters: Counters, exact: bool) -> None:
    """A plan change or an override that lowers a limit below what the window has used refuses at once;
    raising it leaves exactly the difference."""
    for _ in range(6):
        assert (await counters.acquire([per_minute(10, exact=exact)])).allowed
    lowered = await counters.acquire([per_minute(4, exact=exact)])
    assert not lowered.allowed
    assert lowered.counts[0].used == 6
    assert lowered.remaining(lowered.counts[0]) == 0
    raised = [(await counters.acquire([per_minute(8, exact=exact)])).allowed for _ in range(3)]
    assert raised == [True, True, False]


async def test_one_round_trip_per_request_whatever_the_number_of_limits(redis_url: str) -> None:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    relay = Relay((host, int(port)))
    async with relay as relayed:
        client = Redis.from_url(relayed)
        try:
            counters = RedisCounters(client)
            checks = [
                Check.rate(RateLimitItemPerMinute(100), IDS, exact=False, label="a"),
                Check.rate(RateLimitItemPerMinute(200), IDS, exact=True, label="b"),
                this_day(1000),
                Check.calendar("QUOTA/42/orders/month/test", 10_000, time.time() + 86400, "d", time.time()),
            ]
            await counters.acquire(checks)  # the first call may load the script
            before = relay.writes
            for _ in range(10):
                assert (await counters.acquire(checks)).allowed
            assert relay.writes - before == 10
        finally:
            await counters.aclose()
            await client.aclose()


async def test_while_redis_is_away_each_process_still_counts() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        counters = RedisCounters(client)
        verdicts = [await counters.acquire([per_minute(2)]) for _ in range(3)]
        assert [v.allowed for v in verdicts] == [True, True, False]
        assert counters.degraded
    finally:
        await client.aclose()


async def test_counting_goes_on_in_redis_after_the_connection_is_killed_or_the_script_flushed(
    redis: Redis, redis_url: str
) -> None:
    counters = RedisCounters(Redis.from_url(redis_url))
    check = per_minute(10, exact=True)
    try:
        assert (await counters.acquire([check])).allowed
        await redis.client_kill_filter(_type="normal", skipme=True)  # what a Redis restart does to a client
        await redis.script_flush()  # ... and to its scripts
        verdicts = [await counters.acquire([check]) for _ in range(3)]
        assert not counters.degraded
        # Each call counted once, in Redis: limits' own storage reads what the counters wrote.
        assert [v.counts[0].used for v in verdicts][-2:] == [2, 3]
        storage = RedisStorage(redis_url.replace("redis://", "async+redis://"), implementation="redispy")
        assert (await storage.get_moving_window(check.key, 10, 60))[1] == 4
    finally:
        await counters.aclose()
        await counters.redis.aclose()


async def test_the_user_password_and_database_of_the_url_are_used(redis: Redis, redis_url: str) -> None:
    await redis.acl_setuser("counters", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"])
    address = redis_url.removeprefix("redis://").split("/")[0]
    client = Redis.from_url(f"redis://counters:s3cret@{address}/3")
    counters = RedisCounters(client)
    try:
        assert (await counters.acquire([this_day(5)])).allowed
        assert not counters.degraded
        in_db3 = await client.keys("LIMITS:QUOTA/42/*")
        assert in_db3 and not await redis.keys("LIMITS:QUOTA/42/*")  # db 0 has none
        wrong = RedisCounters(Redis.from_url(f"redis://counters:wrong@{address}/3"))
        await wrong.acquire([this_day(5)])
        assert wrong.degraded  # refused by Redis: counted in this process, as while Redis is away
        await wrong.aclose()
        await wrong.redis.aclose()
    finally:
        await client.flushdb()
        await counters.aclose()
        await client.aclose()
        await redis.acl_deluser("counters")
