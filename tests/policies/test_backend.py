"""Backend protection per connection (gateway/upstream.py, policies/backend.py), over real HTTP:
a QPS cap held across two gateway processes through Redis, the circuit breaker's whole cycle,
retries for retryable answers only, and options refused when a connection is saved."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from gateway.errors import InvalidParameter
from tests.conftest import Gateway
from tests.policies.backends import (
    RecordingBackend,
    add_connection,
    backends_fixture,  # noqa: F401 - the `backends` fixture
    clients,
    gateway_processes,
    most_in_any_window,
    wait_for_connection,
)
from tests.services import free_port

TOO_FREQUENT = msgspec.json.encode({"code": 1070, "message": "调用频率超限,请稍后再试"})
SIGN_ERROR = msgspec.json.encode({"code": 1100, "message": "签名错误"})


async def test_a_backend_capped_at_5_qps_never_sees_more_than_5_calls_in_any_second_across_two_nodes(
    gateway: Gateway,
    store: tuple[object, dict[str, str]],
    redis_url: str,
    backends: list[RecordingBackend],
    tmp_path: Path,
) -> None:
    backend = backends[0]
    backend.reset()
    await add_connection(gateway, "capped-5qps", backend.url, {"qps": 5})
    _, env = store
    headers = {"X-Connection": "capped-5qps"}
    with gateway_processes(env, 2, tmp_path, REDIS_URL=redis_url, UNIGATE_UPSTREAM_TIMEOUT="3") as urls:
        async with contextlib.AsyncExitStack() as stack:
            nodes = await clients(stack, urls, gateway.key)
            for node in nodes:
                await wait_for_connection(node, "capped-5qps")
            backend.calls.clear()
            deadline = time.monotonic() + 3.0
            answered: dict[int, list[int]] = {0: [], 1: []}

            async def caller(n: int) -> None:
                node = nodes[n % 2]
                while time.monotonic() < deadline:
                    response = await node.get("/v1/stockouts", params={"limit": 5}, headers=headers)
                    answered[n % 2].append(response.status_code)
                    if response.status_code != 200:
                        assert response.json()["code"] == "upstream_busy", response.text
                        assert int(response.headers["retry-after"]) >= 1

            await asyncio.gather(*(caller(n) for n in range(12)))
    assert most_in_any_window(backend.calls, 1.0) <= 5, sorted(backend.calls)
    # The cap was the limit, not the load: it was reached, and both nodes were served.
    assert most_in_any_window(backend.calls, 1.0) == 5
    assert len(backend.calls) >= 12
    assert answered[0].count(200) >= 3 and answered[1].count(200) >= 3


async def test_the_breaker_opens_fails_fast_half_opens_and_closes(
    gateway: Gateway, client: httpx.AsyncClient, backends: list[RecordingBackend]
) -> None:
    backend = backends[1]
    backend.reset()
    options = {"retries": 0, "breaker": {"failures": 3, "open_seconds": 1}}
    await add_connection(gateway, "breaker-test", backend.url, options)
    await wait_for_connection(client, "breaker-test")
    headers = {"X-Connection": "breaker-test"}

    async def get() -> httpx.Response:
        return await client.get("/v1/stockouts", params={"limit": 5}, headers=headers)

    async def state() -> str:
        return str((await client.get("/readyz")).json()["breakers"]["breaker-test"])

    assert (await get()).status_code == 200
    assert await state() == "closed"

    backend.failing = True
    backend.calls.clear()
    for _ in range(3):
        response = await get()
        assert (response.status_code, response.json()["code"]) == (502, "upstream_unavailable")
    assert await state() == "open"
    # Open: answered at once with 503, and the backend is not called.
    fast = await get()
    assert (fast.status_code, fast.json()["code"]) == (503, "upstream_unavailable")
    assert int(fast.headers["retry-after"]) >= 1
    assert len(backend.calls) == 3
    metrics = (await client.get("/metrics")).text
    assert 'unigate_breaker_state{connection="breaker-test",state="open"} 1.0' in metrics

    # Half-open after open_seconds: one trial goes through; it fails, so the breaker opens again.
    await asyncio.sleep(1.1)
    assert await state() == "half_open"
    assert (await get()).status_code == 502
    assert len(backend.calls) == 4
    assert await state() == "open"

    # The backend recovers: the next trial succeeds and closes the breaker.
    backend.failing = False
    await asyncio.sleep(1.1)
    assert (await get()).status_code == 200
    assert await state() == "closed"
    assert [(await get()).status_code for _ in range(3)] == [200, 200, 200]
    metrics = (await client.get("/metrics")).text
    assert 'unigate_breaker_state{connection="breaker-test",state="closed"} 1.0' in metrics


async def test_too_frequent_and_429_are_retried_but_a_refusal_is_not(
    gateway: Gateway, client: httpx.AsyncClient, backends: list[RecordingBackend]
) -> None:
    backend = backends[2]
    backend.reset()
    await add_connection(gateway, "retry-test", backend.url, {"retries": 2, "backoff_seconds": 0.05})
    await wait_for_connection(client, "retry-test")
    headers = {"X-Connection": "retry-test"}

    backend.calls.clear()
    backend.script.extend([(200, {}, TOO_FREQUENT), (429, {"Retry-After": "1"}, b"{}")])
    response = await client.get("/v1/stockouts", params={"limit": 5}, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 5
    assert len(backend.calls) == 3
    assert backend.calls[2] - backend.calls[1] >= 0.9  # Retry-After: 1 was honoured

    backend.calls.clear()
    backend.script.extend([(200, {}, TOO_FREQUENT)] * 3)
    response = await client.get("/v1/stockouts", params={"limit": 5}, headers=headers)
    assert (response.status_code, response.json()["code"]) == (502, "vendor_error")
    assert len(backend.calls) == 3  # the first try and two retries

    backend.calls.clear()
    backend.script.append((200, {}, SIGN_ERROR))
    response = await client.get("/v1/stockouts", params={"limit": 5}, headers=headers)
    assert response.json()["vendor"]["code"] == "1100"
    assert len(backend.calls) == 1


async def test_a_concurrency_cap_holds_calls_in_flight(
    gateway: Gateway, client: httpx.AsyncClient, backends: list[RecordingBackend]
) -> None:
    backend = backends[3]
    backend.reset()
    await add_connection(gateway, "two-at-once", backend.url, {"concurrency": 2})
    await wait_for_connection(client, "two-at-once")
    backend.calls.clear()
    backend.delay = 0.2
    headers = {"X-Connection": "two-at-once"}
    responses = await asyncio.gather(
        *(client.get("/v1/stockouts", params={"limit": 5}, headers=headers) for _ in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6
    # Each call holds the backend 0.2 s: with two at a time, no three calls ever started within 0.2 s.
    assert most_in_any_window(backend.calls, 0.19) <= 2


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"qps": 0}, "options.qps"),
        ({"qps": "fast"}, "options.qps"),
        ({"concurrency": 0}, "options.concurrency"),
        ({"timeout_seconds": 1000}, "options.timeout_seconds"),
        ({"retries": -1}, "options.retries"),
        ({"breaker": {"failures": 0}}, "options.breaker.failures"),
        ({"breaker": {"open_seconds": "soon"}}, "options.breaker.open_seconds"),
    ],
)
async def test_bad_backend_options_are_refused_when_saved_naming_the_field(
    gateway: Gateway, options: dict, field: str
) -> None:
    with pytest.raises(InvalidParameter) as refused:
        await add_connection(gateway, "bad-options", "http://127.0.0.1:9", options)
    assert refused.value.field == field
    assert refused.value.detail.startswith(field + ": ")


async def test_an_unreachable_backend_is_said_in_words_without_its_address(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    """The caller reads why, not a Python class name, and not where the backend lives."""
    port = free_port()  # nothing listens there
    # Named for this test alone: the session's store is shared, and other tests use names like "nowhere".
    await add_connection(gateway, "refused-port", f"http://127.0.0.1:{port}", {"retries": 0})
    await wait_for_connection(client, "refused-port")
    answer = await client.get("/v1/stockouts", params={"limit": 1}, headers={"X-Connection": "refused-port"})
    assert (answer.status_code, answer.json()["code"]) == (502, "upstream_unavailable")
    assert answer.json()["detail"] == "wangdiantong is unreachable: the connection was refused"
    assert str(port) not in answer.text and "Error" not in answer.json()["detail"]
