"""Cluster-wide claims with two real `unigate serve` processes on one database and one redis-server:
exact limits and quotas across both, and config changes reaching both within a second (over pub/sub:
the nodes' own poll is set to 30 s, so only the announcement can make it in time)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import publish_versions_with
from policies.reload import Announcer
from tests.conftest import Gateway
from tests.policies.p1_support import application, until
from tests.services import Service, free_port, run_process

CLIENTS = 8


@pytest.fixture(scope="module")
def nodes(
    gateway: Gateway,  # the connections to the simulators exist
    store: tuple[Settings, dict[str, str]],
    redis_server: Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[str]]:
    """Two gateway processes sharing the store and Redis; they poll the config only every 30 s."""
    _, env = store
    logs = tmp_path_factory.mktemp("p1-cluster")
    with ExitStack() as stack:
        urls = []
        for n in range(2):
            port = free_port()
            stack.enter_context(
                run_process(
                    [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                    env={**env, "REDIS_URL": redis_server.url, "UNIGATE_CONFIG_POLL_SECONDS": "30"},
                    log_path=logs / f"node-{n}.log",
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls


@pytest.fixture
async def announced(redis_server: Service) -> AsyncIterator[None]:
    """Changes made by this test process are announced on Redis, as the CLI and the portal do."""
    client = Redis.from_url(redis_server.url)
    publish_versions_with(Announcer(client))
    try:
        yield
    finally:
        publish_versions_with(None)
        await client.aclose()


async def known_everywhere(nodes: list[str], key: str) -> None:
    """Wait until every node knows the key, without spending any of its limits: the app is not
    subscribed to orders, so a node that knows the key answers 403 before any counter."""

    async def check() -> bool:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            answers = [await http.get(f"{url}/v1/orders", params={"limit": 1}) for url in nodes]
        return all(answer.status_code == 403 for answer in answers)

    await until(check, what="the new application")


async def load(nodes: list[str], key: str, per_client: int) -> list[httpx.Response]:
    """CLIENTS concurrent clients, each alternating between the nodes."""

    async def client(n: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            return [
                await http.get(f"{nodes[(n + i) % len(nodes)]}/v1/stockouts", params={"limit": 1})
                for i in range(per_client)
            ]

    return [r for batch in await asyncio.gather(*(client(n) for n in range(CLIENTS))) for r in batch]


def codes(responses: list[httpx.Response]) -> dict[str, int]:
    out: dict[str, int] = {}
    for response in responses:
        code = response.json().get("code", "ok") if response.status_code == 429 else "admitted"
        out[code] = out.get(code, 0) + 1
    return out


@pytest.mark.parametrize("strategy", ["sliding-window", "moving-window"])
async def test_eight_clients_on_two_nodes_get_exactly_100_a_minute(
    nodes: list[str], announced: None, strategy: str
) -> None:
    _, key, _ = await application(
        {"rate_limits": {"per_minute": 100, "strategy": strategy}}, apis=("stockouts",)
    )
    await known_everywhere(nodes, key)
    responses = await load(nodes, key, per_client=20)
    assert codes(responses) == {"admitted": 100, "rate_limited": 60}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "100"
    assert refused.headers["ratelimit-remaining"] == "0"
    admitted = [r for r in responses if r.status_code != 429]
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in admitted) == list(range(100))


async def test_refused_calls_use_no_quota_and_a_plan_change_reaches_both_nodes_within_a_second(
    nodes: list[str], announced: None
) -> None:
    _, key, plan = await application(
        {"rate_limits": {"per_minute": 20}, "quotas": {"per_day": 25}}, apis=("stockouts",)
    )
    await known_everywhere(nodes, key)
    assert codes(await load(nodes, key, per_client=5)) == {"admitted": 20, "rate_limited": 20}
    # The 20 refusals took nothing from the day's 25: lifting the minute limit leaves exactly 5.
    await policy_manage.update_plan(
        plan, config={"rate_limits": {"per_minute": 1000}, "quotas": {"per_day": 25}}
    )
    await asyncio.sleep(1.0)
    assert codes(await load(nodes, key, per_client=5)) == {"admitted": 5, "quota_exceeded": 35}


async def test_a_key_revoked_by_another_process_is_refused_by_both_nodes_within_a_second(
    nodes: list[str], announced: None, store: tuple[Settings, dict[str, str]], redis_server: Service
) -> None:
    consumer, key, _ = await application(apis=("stockouts",))
    await known_everywhere(nodes, key)
    key_id = next(row["id"] for row in await manage.list_keys(consumer))
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        assert [
            (await http.get(f"{url}/v1/stockouts", params={"limit": 1})).status_code for url in nodes
        ] == [
            200,
            200,
        ]
        # `unigate keys revoke`, a process of its own, announces the change on Redis as it exits.
        _, env = store
        revoke = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "keys", "revoke", str(key_id),
            env={**os.environ, **env, "REDIS_URL": redis_server.url},
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert await revoke.wait() == 0
        await asyncio.sleep(1.0)
        refused = [await http.get(f"{url}/v1/stockouts", params={"limit": 1}) for url in nodes]
    assert [r.status_code for r in refused] == [401, 401]
    assert all(r.json()["code"] == "unauthorized" for r in refused)


async def test_a_token_from_one_node_works_on_the_other(
    nodes: list[str], announced: None, store: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = store
    consumer, key, _ = await application(apis=("stockouts",))
    client = await policy_manage.create_oauth_client(Vault(settings.secret_key), consumer, ["stockouts:read"])
    await known_everywhere(nodes, key)
    async with httpx.AsyncClient() as http:
        issued = await http.post(
            f"{nodes[0]}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.client_secret),
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        answer = await http.get(
            f"{nodes[1]}/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
