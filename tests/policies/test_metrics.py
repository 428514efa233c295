"""Prometheus /metrics of a real gateway process: requests and latency by route, consumer and connection,
limiter rejections, breaker states, admission gauges."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx

from gateway.store.tables import Consumer
from tests.conftest import Gateway
from tests.policies.backends import clients, gateway_processes
from tests.policies.p1_support import application


def _value(text: str, name: str, **labels: str) -> float:
    """The value of one sample, whatever the order of its labels; 0 when it is absent."""
    for match in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


async def _named_application(per_minute: int) -> tuple[str, str]:
    """A subscribed application under a plan of `per_minute` calls: its consumer's name and its key."""
    consumer, key, _ = await application({"rate_limits": {"per_minute": per_minute}}, grants=("wdt-down",))
    name = (await Consumer.select(Consumer.name).where(Consumer.id == consumer).first())["name"]
    return name, key


async def test_metrics_count_requests_latency_and_rejections_by_route_consumer_and_connection(
    gateway: Gateway, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    name, key = await _named_application(per_minute=3)
    _, env = store
    with gateway_processes(env, 1, tmp_path) as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], key)
            listed = [(await http.get("/v1/stockouts", params={"limit": 1})).status_code for _ in range(5)]
            one = await http.get("/v1/stockouts/CK-NONE", headers={"X-Connection": "wdt-down"})
            one_status = one.status_code
            answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    route = {"route": "/v1/stockouts", "consumer": name, "connection": "wdt-demo"}
    assert listed == [200, 200, 200, 429, 429]  # a plan of 3 calls a minute
    assert _value(text, "unigate_requests_total", status="200", method="GET", **route) == 3
    assert _value(text, "unigate_requests_total", status="429", method="GET", **route) == 2
    assert _value(text, "unigate_request_duration_seconds_count", **route) == 5
    assert _value(text, "unigate_request_duration_seconds_bucket", le="+Inf", **route) == 5
    rejected = 2 + (one_status == 429)
    assert _value(text, "unigate_limiter_rejections_total", policy="rate_limit", consumer=name) == rejected
    # The route label is the template, not the path a caller typed.
    read_one = {"route": "/v1/stockouts/{stockout_no}", "consumer": name, "connection": "wdt-down"}
    assert _value(text, "unigate_requests_total", status=str(one_status), method="GET", **read_one) == 1
    assert _value(text, "unigate_breaker_state", connection="wdt-demo", state="closed") == 1
    assert re.search(r"^unigate_admission_in_flight \S+$", text, re.M)
    assert re.search(r"^unigate_admission_queue_depth \S+$", text, re.M)


async def test_with_two_workers_every_scrape_counts_every_worker(
    gateway: Gateway, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    name, key = await _named_application(per_minute=1000)
    _, env = store
    route = {"route": "/v1/stockouts", "consumer": name, "connection": "wdt-demo", "method": "GET"}
    statuses: list[int] = []
    pids: set[str] = set()
    with gateway_processes(env, 1, tmp_path, UNIGATE_WORKERS="2") as (url,):
        # A connection of its own for each call: the kernel spreads connections over the workers once
        # both listen (the second may still be starting when the first answers /healthz).
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=fresh, timeout=30) as http:
            auth = {"Authorization": f"Bearer {key}"}
            for _ in range(30):
                for _ in range(10):
                    answer = await http.get("/v1/stockouts", params={"limit": 1}, headers=auth)
                    statuses.append(answer.status_code)
                # Each worker's breaker for wdt-demo is a series of its own, labelled with its pid.
                pids = _breaker_pids((await http.get("/metrics")).text)
                if len(pids) == 2:
                    break
            scrapes = [(await http.get("/metrics")).text for _ in range(8)]
    assert len(pids) == 2, "the scrapes never showed two workers' series"
    calls = len(statuses)
    assert statuses == [200] * calls
    # Whichever worker answers the scrape, it counts the calls both workers served.
    assert [_value(text, "unigate_requests_total", status="200", **route) for text in scrapes] == [calls] * 8


def _breaker_pids(text: str) -> set[str]:
    series = re.findall(r"^unigate_breaker_state\{([^}]*)\}", text, re.M)
    labels = [dict(re.findall(r'(\w+)="([^"]*)"', found)) for found in series]
    return {found["pid"] for found in labels if found.get("connection") == "wdt-demo" and "pid" in found}
