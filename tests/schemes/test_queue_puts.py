"""The queue's put (one script) against a real Redis: a put is carried out once, however often and
however late a copy of it arrives, and one turned away by the bound may be tried again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.schemes.queue import Progress, RedisQueue

RUN = 7


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[RedisQueue]:
    redis = Redis.from_url(redis_url)
    queue = RedisQueue(redis)
    await queue.depth()  # the streams and their group exist, as for every put
    yield queue
    await redis.aclose()


async def _put(
    queue: RedisQueue, name: str, bodies: list[bytes], cursor: str, done: bool, bound: int | None = None
) -> bool:
    """One try of a put (one script call in Redis), named as each try of one put is."""
    return await queue.put(
        RUN, "normal", bodies, cursor=cursor, pull_done=done, pulled=len(bodies), name=name, bound=bound
    )


async def test_a_late_copy_of_an_older_put_changes_nothing(queue: RedisQueue) -> None:
    assert await _put(queue, "a", [b"page-1"], cursor="c1", done=False)
    assert await _put(queue, "b", [b"page-2", b"page-3"], cursor="", done=True)
    after_b = await queue.progress(RUN)
    assert after_b == Progress(enqueued=3, done=0, cursor=None, pull_done=True, pulled=3)

    # A's first try, which had timed out, reaches Redis after B: it says done and does nothing.
    assert await _put(queue, "a", [b"page-1"], cursor="c1", done=False)
    assert await queue.progress(RUN) == after_b
    assert await queue.depth() == 3


async def test_a_put_the_bound_turned_away_can_be_tried_again(queue: RedisQueue) -> None:
    assert await _put(queue, "a", [b"1", b"2"], cursor="c1", done=False, bound=3)
    assert not await _put(queue, "b", [b"3", b"4"], cursor="c2", done=False, bound=3)
    assert (await queue.progress(RUN)).cursor == "c1"

    assert await _put(queue, "b", [b"3", b"4"], cursor="c2", done=False, bound=10)
    assert await queue.progress(RUN) == Progress(enqueued=4, cursor="c2", pulled=4)
    assert await queue.depth() == 4


async def test_forgetting_a_run_forgets_its_puts(queue: RedisQueue) -> None:
    assert await _put(queue, "a", [b"1"], cursor="c1", done=False)
    await queue.forget(RUN)
    assert await queue.progress(RUN) == Progress()
    assert not await queue.redis.exists(queue.puts_key(RUN))
