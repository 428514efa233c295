"""The list reads answered past Litestar's handler layer (gateway/unified/fast.py) say exactly what the
documented Litestar handlers say: a second gateway process with UNIGATE_FAST_READS=off answers the same
requests, and every answer (pages, cursors, problems) must match."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

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


def _seen(response: httpx.Response) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


def _cases(anchor: Any) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
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
        ("/v1/stockouts", {"include": "everything"}, {}),
        ("/v1/stockouts", {}, {"X-Connection": "nope"}),
        ("/v1/stockouts", {**window, "limit": 1}, {"X-Connection": "wdt-badsign"}),
        ("/v1/orders", {**hours, "limit": 4}, {}),
        ("/v1/orders", {**hours, "limit": 2, "status": "paid", "include": "remote_data"}, {}),
        ("/v1/orders", {"status": "shipped-ish"}, {}),
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
