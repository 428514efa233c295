"""Usage metering (policies/metering.py): calls, errors, rejections and latency buckets per consumer x API
x day, written in batches by a real gateway process, and a bounded log of masked request samples."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import pytest

from gateway.store.usage_tables import BUCKET_COLUMNS, RequestSample, UsageDaily
from policies import metering
from policies.metering import UsageRecorder
from tests.conftest import Gateway
from tests.policies.backends import clients, gateway_processes
from tests.policies.p1_support import application, until

MOBILE = "13812345678"


async def test_usage_counts_every_call_refused_or_not_and_keeps_a_few_masked_samples(
    gateway: Gateway, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    consumer, key, _ = await application({"rate_limits": {"per_minute": 2}})
    _, env = store
    settings = {"UNIGATE_METERING_FLUSH_SECONDS": "0.2", "UNIGATE_REQUEST_SAMPLES": "3"}
    with gateway_processes(env, 1, tmp_path, **settings) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], key)
            statuses = [(await http.get("/v1/stockouts", params={"limit": 1})).status_code for _ in range(6)]
            tracking = await http.get(
                "/v1/logistics/tracking",
                params={"carrier": "zhongtong", "tracking_no": "ZT1", "phone": MOBILE},
            )

            async def written() -> bool:
                # A flush writes the day's counts, then stores and trims the samples: wait for both.
                rows = await UsageDaily.select().where(UsageDaily.consumer == consumer)
                kept = await RequestSample.count().where(RequestSample.consumer == consumer)
                return sum(row["calls"] for row in rows) == 7 and 0 < kept <= 3

            await until(written, within=10.0, what="the usage flush")
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
    rows = {row["api"]: row for row in await UsageDaily.select().where(UsageDaily.consumer == consumer)}
    stockouts = rows["stockouts"]
    assert (stockouts["calls"], stockouts["errors"], stockouts["rejected"]) == (6, 4, 4)
    assert sum(stockouts[column] for column in BUCKET_COLUMNS) == 6
    assert stockouts["latency_ms_sum"] > 0
    assert rows["logistics"]["calls"] == 1
    assert rows["logistics"]["errors"] == (1 if tracking.status_code >= 400 else 0)

    samples = (
        await RequestSample.select()
        .where(RequestSample.consumer == consumer)
        .order_by(RequestSample.id, ascending=False)
    )
    assert len(samples) == 3  # UNIGATE_REQUEST_SAMPLES: only the newest are kept
    newest = samples[0]
    assert newest["api"] == "logistics" and newest["path"] == "/v1/logistics/tracking"
    assert "138****5678" in newest["query"] and MOBILE not in newest["query"]
    assert newest["request_id"] == tracking.headers["x-request-id"]
    refused = [s for s in samples if s["status"] == 429]
    assert refused and all(s["code"] == "rate_limited" and s["detail"] for s in refused)


async def test_a_flush_that_fails_part_way_puts_back_only_what_was_not_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rows written before the failing one are not counted again at the next flush: quota counters
    start from these figures (policies/quota_seed.py), so a double count would refuse calls under quota."""
    recorder = UsageRecorder("Asia/Shanghai", samples_per_consumer=10)
    for consumer in (1, 2, 3):
        recorder.record(consumer, "orders", 200, "", 5.0, now=0.0)
        recorder.admit(consumer, "orders", now=0.0)
    written: list[int] = []

    async def add_usage(consumer_id: int, api: str, day: date, tally: object) -> None:
        if consumer_id == 2:
            raise ConnectionError("the database went away")
        written.append(consumer_id)

    monkeypatch.setattr(metering, "_add_usage", add_usage)
    with pytest.raises(ConnectionError):
        await recorder.flush()
    assert written == [1]
    assert sorted(consumer for consumer, _, _ in recorder.tallies) == [2, 3]
    assert [admitted for *_, admitted in recorder.unflushed_admitted()] == [1, 1]
