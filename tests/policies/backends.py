"""Helpers for the backend-protection, admission and cache tests: a scripted Wangdiantong backend that
records when every call arrives, and gateway processes pointed at it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.connectors.wangdiantong.client import WdtClient
from gateway.store import manage
from gateway.store.crypto import Vault
from gateway.upstream import Upstream
from tests.conftest import Gateway, Simulators, _LoopThread, _serve
from tests.services import free_port, run_process

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class RecordingBackend:
    """Answers every Wangdiantong call with `answer` (or the next scripted reply) and notes its arrival."""

    answer: bytes
    url: str = ""
    calls: list[float] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    delay: float = 0.0
    failing: bool = False  # answer HTTP 500 to everything

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(time.monotonic())
        await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            return web.Response(status=500, text="internal error")
        status, headers, body = self.script.popleft() if self.script else (200, {}, self.answer)
        return web.Response(status=status, headers=headers, body=body, content_type="application/json")

    def reset(self) -> None:
        self.calls.clear()
        self.script.clear()
        self.delay, self.failing = 0.0, False


def recorded_answer(simulators: Simulators) -> bytes:
    """A real `stockout_order_query_trade` answer of the simulator: 5 stockouts, as the vendor sends them."""
    client = WdtClient(base_url=simulators.wdt.url, upstream=Upstream(), **wdt_sim.DEFAULT_CREDENTIALS)
    end = simulators.anchor
    form = client.signed_form(
        {
            "start_time": (end.replace(day=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "end_time": end.strftime("%Y-%m-%d %H:%M:%S"),
            "is_by_modified": 1,
            "page_no": 0,
            "page_size": 5,
        }
    )
    response = httpx.post(f"{simulators.wdt.url}/openapi2/stockout_order_query_trade.php", data=form)
    response.raise_for_status()
    return response.content


@pytest.fixture(scope="session", name="backends")
def backends_fixture(simulators: Simulators) -> Iterator[list[RecordingBackend]]:
    """Four recording backends on 127.0.0.1 (indexes 0-3), each a test's own; reset before use."""
    answer = recorded_answer(simulators)
    thread = _LoopThread()
    runners: list[web.AppRunner] = []
    made: list[RecordingBackend] = []
    try:
        for _ in range(4):
            backend = RecordingBackend(answer)
            app = web.Application()
            app.router.add_post("/openapi2/{method}.php", backend.handle)
            runner, backend.url = thread.run(_serve(app))
            runners.append(runner)
            made.append(backend)
        yield made
    finally:
        for runner in runners:
            thread.run(runner.cleanup())
        thread.stop()


async def add_connection(gateway: Gateway, name: str, url: str, options: dict[str, Any]) -> None:
    await manage.put_connection(
        Vault(gateway.settings.secret_key),
        name=name,
        system="wangdiantong",
        base_url=url,
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
        options=options,
    )
    await manage.grant_connections(gateway.consumer_id, [name])  # test-app names it in X-Connection


async def wait_for_connection(client: httpx.AsyncClient, name: str, within: float = 10.0) -> None:
    """Wait until a gateway's config snapshot knows `name` (it reloads on the config version)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = await client.get("/readyz")
        if name in response.json().get("breakers", {}):
            return
        probe = await client.get("/v1/stockouts", params={"limit": 1}, headers={"X-Connection": name})
        if probe.json().get("field") != "X-Connection":
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"connection {name} did not reach the gateway within {within}s")


@contextmanager
def gateway_processes(env: dict[str, str], count: int, log_dir: Path, **extra: str) -> Iterator[list[str]]:
    """`count` real `unigate serve` processes over the same store, with `extra` settings; their URLs."""
    with ExitStack() as stack:
        urls = []
        for n in range(count):
            port = free_port()
            stack.enter_context(
                run_process(
                    [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                    env={**env, **extra},
                    log_path=log_dir / f"gateway-{n}.log",
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls


async def clients(stack: AsyncExitStack, urls: Sequence[str], key: str) -> list[httpx.AsyncClient]:
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        )
        for url in urls
    ]


def most_in_any_window(times: Sequence[float], window: float = 1.0) -> int:
    """The largest number of `times` inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
