"""Admission, backpressure and priority (policies/admission.py) in a real gateway process: under overload,
high-priority consumers are served while low-priority ones are shed with 503 `overloaded`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.conftest import Gateway
from tests.policies.backends import (
    RecordingBackend,
    add_connection,
    backends_fixture,  # noqa: F401 - the `backends` fixture
    clients,
    gateway_processes,
    wait_for_connection,
)
from tests.policies.p1_support import application, until


async def test_under_overload_high_priority_is_served_and_low_priority_is_shed(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[0]
    backend.reset()
    backend.delay = 0.25  # each request holds one of the node's two slots for a quarter of a second
    await add_connection(gateway, "slow-erp", backend.url, {})
    _, high_key, _ = await application({"priority": "high"}, grants=("slow-erp",))
    _, low_key, _ = await application({"priority": "low"}, grants=("slow-erp",))
    _, env = store
    limits = {
        "UNIGATE_ADMISSION_MAX_IN_FLIGHT": "2",
        "UNIGATE_ADMISSION_QUEUE": "4",
        "UNIGATE_ADMISSION_MAX_WAIT": "2",
    }
    headers = {"X-Connection": "slow-erp"}
    results: dict[str, Counter[str]] = {"high": Counter(), "low": Counter()}
    with gateway_processes(env, 1, tmp_path, **limits) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (high,) = await clients(stack, [url], high_key)
            (low,) = await clients(stack, [url], low_key)
            await wait_for_connection(high, "slow-erp")
            deadline = time.monotonic() + 3.0

            async def caller(name: str) -> None:
                http = high if name == "high" else low
                while time.monotonic() < deadline:
                    response = await http.get("/v1/stockouts", params={"limit": 5}, headers=headers)
                    if response.status_code == 200:
                        results[name]["200"] += 1
                        continue
                    body = response.json()
                    results[name][f"{response.status_code} {body['code']}"] += 1
                    assert int(response.headers["retry-after"]) >= 1
                    await asyncio.sleep(0.05)

            await asyncio.gather(*(caller("high") for _ in range(3)), *(caller("low") for _ in range(10)))
            metrics = (await high.get("/metrics")).text
            healthy = (await high.get("/healthz")).status_code
    assert set(results["high"]) == {"200"}, results
    assert results["high"]["200"] >= 9
    assert results["low"]["503 overloaded"] > 0, results
    assert set(results["low"]) <= {"200", "503 overloaded"}, results  # shed, never failed
    assert healthy == 200
    assert 'unigate_limiter_rejections_total{consumer="' in metrics and 'policy="admission"' in metrics
    assert "unigate_admission_queue_depth" in metrics


async def test_a_waiter_whose_caller_hangs_up_leaves_the_queue_and_never_reaches_the_backend(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[1]
    backend.reset()
    await add_connection(gateway, "slow-erp-2", backend.url, {})
    _, key, _ = await application(grants=("slow-erp-2",))
    _, env = store
    limits = {
        "UNIGATE_ADMISSION_MAX_IN_FLIGHT": "1",
        "UNIGATE_ADMISSION_QUEUE": "2",
        "UNIGATE_ADMISSION_MAX_WAIT": "10",
    }
    params, headers = {"limit": 5}, {"X-Connection": "slow-erp-2"}
    with gateway_processes(env, 1, tmp_path, **limits) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], key)
            await wait_for_connection(http, "slow-erp-2")
            backend.reset()
            backend.delay = 1.0
            first = asyncio.create_task(http.get("/v1/stockouts", params=params, headers=headers))

            async def slot_taken() -> bool:
                return bool(backend.calls)

            await until(slot_taken, what="the first call reaching the backend")

            async def impatient() -> str:
                try:
                    await http.get("/v1/stockouts", params=params, headers=headers, timeout=0.3)
                except httpx.TimeoutException:
                    return "hung up"
                return "answered"

            # Two callers fill the queue, then hang up: their places are free again.
            assert await asyncio.gather(impatient(), impatient()) == ["hung up", "hung up"]

            async def queue_empty() -> bool:  # the node hears of a hang-up a moment after it happens
                return "unigate_admission_queue_depth 0.0" in (await http.get("/metrics")).text

            await until(queue_empty, what="the queue to let the callers who hung up go")
            patient = await http.get("/v1/stockouts", params=params, headers=headers)
            assert patient.status_code == 200, patient.text
            assert (await first).status_code == 200
            metrics = (await http.get("/metrics")).text
    assert len(backend.calls) == 2  # the two callers who hung up cost the backend nothing
    assert "unigate_admission_queue_depth 0.0" in metrics
