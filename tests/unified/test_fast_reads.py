"""The list reads answered past Litestar's handler layer (gateway/unified/fast.py) say exactly what the
documented Litestar handlers say: a second gateway process with UNIGATE_FAST_READS=off answers the same
requests, and every answer (pages, cursors, problems) must match."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.store import manage
from gateway.store.crypto import Vault
from tests.conftest import Gateway, Simulators
from tests.services import free_port, run_process


@pytest.fixture(scope="module")
def handler_layer(
    gateway: Gateway, store: tuple[Any, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The same store and key, served by the Litestar handlers only."""
    port = free_port()
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env={**store[1], "UNIGATE_FAST_READS": "off"},
        log_path=tmp_path_factory.mktemp("logs") / "handlers.log",
        ready_url=f"http://127.0.0.1:{port}/healthz",
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def both(gateway: Gateway, handler_layer: str) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    async with (
        httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as fast,
        httpx.AsyncClient(base_url=handler_layer, headers=headers, timeout=30) as slow,
    ):
        yield fast, slow


# Headers whose values differ from one answer to the next; their presence is still compared.
CHANGING = frozenset(("date", "x-request-id", "ratelimit-remaining", "ratelimit-reset", "retry-after"))


def _seen(response: httpx.Response) -> tuple[int, Any, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    headers = sorted((name, "" if name in CHANGING else value) for name, value in response.headers.items())
    return response.status_code, headers, body


def _cases(anchor: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    window = {
        "updated_from": (anchor - timedelta(days=3)).isoformat(),
        "updated_to": anchor.isoformat(),
    }
    hours = {
        "updated_from": (anchor - timedelta(hours=5)).isoformat(),
        "updated_to": anchor.isoformat(),
    }
    return [
        ("/v1/stockouts", {**window, "limit": 7}, {}),
        ("/v1/stockouts/", {**window, "limit": "3", "status": "shipped"}, {}),
        ("/v1/stockouts", {**window, "limit": 2, "include": "remote_data"}, {}),
        ("/v1/stockouts", {**window, "limit": 2, "status": "cancelled", "shop": "none-such"}, {}),
        ("/v1/stockouts", {**window, "limit": 2}, {"X-Connection": "wdt-demo"}),
        ("/v1/stockouts", {**window, "limit": 2, "status": ""}, {}),  # a blank value is a value
        ("/v1/stockouts", {"limit": 0}, {}),
        ("/v1/stockouts", {"limit": 101}, {}),
        ("/v1/stockouts", {"limit": "many"}, {}),
        ("/v1/stockouts", {"status": "lost"}, {}),
        ("/v1/stockouts", {"updated_from": "yesterday"}, {}),
        ("/v1/stockouts", {"updated_from": window["updated_to"], "updated_to": window["updated_from"]}, {}),
        ("/v1/stockouts", {"cursor": "not-a-cursor"}, {}),
        ("/v1/stockouts", {"limit": "1e1"}, {}),  # limit is digits only, on both paths
        ("/v1/stockouts", {**window, "limit": "05"}, {}),
        ("/v1/orders", {**hours, "limit": "0" * 5000 + "3"}, {}),  # a fixed window: "now" moves between calls
        ("/v1/orders", {"limit": ""}, {}),
        ("/v1/orders", [("limit", "2"), ("limit", "x")], {}),
        ("/v1/orders", [("limit", "x"), ("limit", "2")], {}),
        ("/v1/stockouts", [("status", "shipped"), ("status", "lost")], {}),
        ("/v1/stockouts", {"updated_from": "2999-01-01T00:00:00+08:00"}, {}),  # after the default end, now
        ("/v1/stockouts", {"updated_from": "2999-01-01"}, {}),
        ("/v1/stockouts", {"include": "everything"}, {}),
        ("/v1/stockouts", {"include": ""}, {}),
        ("/v1/stockouts", {}, {"X-Connection": "nope"}),
        ("/v1/stockouts", {}, {"X-Connection": "仓库".encode()}),  # bytes that are not ASCII: no 500
        ("/v1/stockouts", {**window, "limit": 1}, {"X-Connection": "wdt-badsign"}),
        ("/v1/orders", {**hours, "limit": 4}, {}),
        ("/v1/orders", {**hours, "limit": 2, "status": "paid", "include": "remote_data"}, {}),
        ("/v1/orders", {"status": "shipped-ish"}, {}),
        ("/v1/stockouts", {**window, "warehouse_code": "SH01"}, {}),  # not a filter: refused, not ignored
        ("/v1/orders", {"limit": 0, "shop_code": "x"}, {}),  # the known parameter's problem comes first
        ("/v1/stockouts", [("warehouse", "a"), ("limit", "2"), ("warehouse", "b"), ("zone", "c")], {}),
        ("/v1/stockouts", {"limit": 1}, {"Authorization": "Bearer ug_not-a-key"}),
        ("/v1/orders", {"limit": 1}, {"Authorization": ""}),
        ("//v1/stockouts", {**window, "limit": 1}, {}),
        ("/v1/stockouts", {**window, "limit": 1}, {"Host": "bad host!"}),
        ("/v1/orders", {**hours, "limit": 1}, {"X-Request-ID": "caller-chosen"}),
    ]


async def test_fast_reads_answer_as_the_handlers_do(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], simulators: Simulators
) -> None:
    fast, slow = both
    compared = 0
    for path, params, headers in _cases(simulators.anchor):
        got = await fast.get(path, params=params, headers=headers)
        want = await slow.get(path, params=params, headers=headers)
        assert _seen(got) == _seen(want), (path, params, headers)
        compared += got.status_code == 200 and bool(got.json()["items"])
    assert compared >= 5  # most cases are real pages, not empty ones


async def test_following_cursors_gives_the_same_pages(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], simulators: Simulators
) -> None:
    fast, slow = both
    params: dict[str, Any] = {
        "updated_from": (simulators.anchor - timedelta(days=2)).isoformat(),
        "updated_to": simulators.anchor.isoformat(),
        "limit": 50,
    }
    for _ in range(4):
        got, want = (
            await fast.get("/v1/stockouts", params=params),
            await slow.get("/v1/stockouts", params=params),
        )
        assert _seen(got) == _seen(want)
        cursor = got.json()["next_cursor"]
        if cursor is None:
            break
        params["cursor"] = cursor


@pytest.fixture(scope="module")
async def odd_backend(gateway: Gateway) -> AsyncIterator[str]:
    """A connection to a backend whose answer is JSON in the envelope but a number where the list should
    be: the connector fails with an error no handler expects (a TypeError), not an UnigateError."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"code": 0, "message": "", "total_count": 1, "stockout_list": 5})

    app = web.Application()
    app.router.add_post("/openapi2/{method}.php", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await manage.put_connection(
        Vault(gateway.settings.secret_key),
        name="wdt-odd",
        system="wangdiantong",
        base_url=f"http://127.0.0.1:{port}",
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
    )
    await manage.grant_connections(gateway.consumer_id, ["wdt-odd"])  # test-app names it in X-Connection
    try:
        yield "wdt-odd"
    finally:
        await runner.cleanup()


async def test_an_unexpected_failure_is_the_same_problem_on_both_paths(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], odd_backend: str
) -> None:
    fast, slow = both
    headers = {"X-Connection": odd_backend}
    for http in (fast, slow):  # each process sees the new connection within its config poll
        for _ in range(100):
            answer = await http.get("/v1/stockouts", params={"limit": 1}, headers=headers)
            if answer.json().get("code") not in ("invalid_parameter", "connection_not_granted"):
                break
            await asyncio.sleep(0.05)
    got = await fast.get("/v1/stockouts", params={"limit": 1}, headers=headers)
    want = await slow.get("/v1/stockouts", params={"limit": 1}, headers=headers)
    assert got.status_code == 500
    assert got.headers["content-type"] == "application/problem+json"
    assert _seen(got) == _seen(want)


async def test_a_cursor_sent_with_other_filters_is_the_same_problem_on_both_paths(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], simulators: Simulators
) -> None:
    fast, slow = both
    first: dict[str, Any] = {
        "updated_from": (simulators.anchor - timedelta(hours=5)).isoformat(),
        "updated_to": simulators.anchor.isoformat(),
        "status": "shipped",
        "limit": 2,
    }
    cursor = (await fast.get("/v1/orders", params=first)).json()["next_cursor"]
    assert cursor
    cases: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({**first, "cursor": cursor}, {}, 200),  # the same filters re-sent: the next page
        ({"cursor": cursor}, {"X-Connection": "wdt-demo"}, 200),
        ({"status": "paid", "cursor": cursor}, {}, 400),
        ({**first, "limit": "3", "include": "remote_data", "cursor": cursor}, {}, 400),
        ({"cursor": cursor}, {"X-Connection": "wdt-target"}, 400),
    ]
    for params, headers, status in cases:
        got = await fast.get("/v1/orders", params=params, headers=headers)
        want = await slow.get("/v1/orders", params=params, headers=headers)
        assert _seen(got) == _seen(want), (params, headers)
        assert got.status_code == status, got.text
