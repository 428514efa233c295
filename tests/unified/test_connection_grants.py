"""Per-application connection grants: an app reads through open connections and those granted to it, and
through no other; a grant or a revoke reaches every running process through the config version."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.errors import InvalidParameter
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from tests.conftest import TEST_PLAN, Gateway, Simulators, unigate
from tests.policies.backends import clients, gateway_processes
from tests.policies.p1_support import application, until


async def _connection(gateway: Gateway, simulators: Simulators, prefix: str, *, open: bool = False) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await manage.put_connection(
        Vault(gateway.settings.secret_key),
        name=name,
        system="wangdiantong",
        base_url=simulators.wdt.url,
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
        open=open,
    )
    return name


async def _read(http: httpx.AsyncClient, connection: str | None = None) -> httpx.Response:
    headers = {"X-Connection": connection} if connection else {}
    return await http.get("/v1/stockouts", params={"limit": 1}, headers=headers)


async def _known(http: httpx.AsyncClient, connection: str) -> None:
    """Wait for the node to load the config in which `connection` is usable (it polls the version)."""

    async def usable() -> bool:
        return (await _read(http, connection)).status_code == 200

    await until(usable, within=10, what=f"{connection} becoming usable")


async def test_an_app_reads_through_open_and_granted_connections_only(
    gateway: Gateway, simulators: Simulators
) -> None:
    granted = await _connection(gateway, simulators, "grant-a")
    other = await _connection(gateway, simulators, "grant-b")
    shared = await _connection(gateway, simulators, "grant-open", open=True)
    _, key, _ = await application(apis=("stockouts",), grants=(granted,))
    _, everything, _ = await application(apis=("stockouts",), grants=("*",))
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        await _known(http, granted)
        assert (await _read(http, shared)).status_code == 200  # open: no grant needed
        assert (await _read(http)).status_code == 200  # its default (granted by the admin naming it)

        refused = await _read(http, other)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert (problem["code"], problem["field"]) == ("connection_not_granted", "X-Connection")
        assert "ask an admin" in problem["detail"]

        # A name that does not exist reads exactly as one that is not granted: nothing to learn from it.
        unknown = await _read(http, "no-such-connection")
        assert unknown.status_code == 403
        assert {k: v for k, v in unknown.json().items() if k not in ("detail", "request_id")} == {
            k: v for k, v in problem.items() if k not in ("detail", "request_id")
        }
        assert unknown.json()["detail"] == problem["detail"].replace(repr(other), "'no-such-connection'")

    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {everything}"}, timeout=30
    ) as http:
        await _known(http, other)
        # Granted `*`, it may use every connection, so it may also learn that a name does not exist.
        unknown = await _read(http, "no-such-connection")
        assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_parameter")
        assert unknown.json()["field"] == "X-Connection"


async def test_a_revoked_default_is_refused_without_naming_a_header(
    gateway: Gateway, simulators: Simulators
) -> None:
    own = await _connection(gateway, simulators, "grant-default")
    consumer = await manage.create_consumer(f"app-{uuid.uuid4().hex[:8]}", {"stockouts": own}, by_admin=True)
    await policy_manage.ensure_subscriptions(consumer, TEST_PLAN)
    key = (await manage.create_key(consumer)).key
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        await _known(http, own)  # granted by naming it as the default
        assert (await _read(http)).status_code == 200
        await manage.revoke_connections(consumer, [own])

        async def refused() -> bool:
            return (await _read(http)).status_code == 403

        await until(refused, within=10, what="the revoke")
        problem = (await _read(http)).json()
        assert problem["code"] == "connection_not_granted"
        assert "field" not in problem
        assert "default connection for stockouts" in problem["detail"]
        assert (await _read(http, "wdt-demo")).status_code == 200  # open: still usable


async def test_a_grant_and_a_revoke_by_the_cli_reach_every_process(
    gateway: Gateway, simulators: Simulators, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    connection = await _connection(gateway, simulators, "grant-cli")
    consumer, key, _ = await application(apis=("stockouts",))
    _, env = store
    app_name = next(row["name"] for row in await manage.list_consumers() if row["id"] == consumer)
    with gateway_processes(env, 2, tmp_path) as urls:
        async with contextlib.AsyncExitStack() as stack:
            nodes = await clients(stack, urls, key)
            for node in nodes:
                await _known(node, "wdt-demo")
                assert (await _read(node, connection)).status_code == 403

            granted = unigate(env, "consumers", "grant", app_name, connection)
            assert connection in granted.stdout
            for node in nodes:
                await _known(node, connection)

            unigate(env, "consumers", "revoke", app_name, connection)
            for node in nodes:

                async def refused(node: httpx.AsyncClient = node) -> bool:
                    return (await _read(node, connection)).status_code == 403

                await until(refused, within=10, what="the revoke")

            # Opened to every application: usable again without a grant, on both.
            unigate(env, "connections", "update", connection, "--open")
            for node in nodes:
                await _known(node, connection)
    listed = unigate(env, "connections", "list").stdout
    assert any(line.split()[:3] == [connection, "wangdiantong", "open"] for line in listed.splitlines())
    consumers = unigate(env, "consumers", "list").stdout
    assert any(app_name in line and "granted kd100-demo,wdt-demo" in line for line in consumers.splitlines())


async def test_a_connection_header_sent_twice_is_refused_and_no_sent_name_labels_the_metrics(
    gateway: Gateway, simulators: Simulators
) -> None:
    spoof = f"spoofed-{uuid.uuid4().hex[:8]}"
    _, key, _ = await application(apis=("stockouts",))
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        await _known(http, "wdt-demo")
        for header in ("X-Connection", "X-Tracking-Connection"):
            twice = await http.get(
                "/v1/stockouts/SO1/tracking", headers=[(header, "wdt-demo"), (header, spoof)]
            )
            assert twice.status_code == 400, twice.text
            assert (twice.json()["code"], twice.json()["field"]) == ("invalid_parameter", header)
        # A refused name is not what the request is counted under either.
        assert (await _read(http, spoof)).status_code == 403
        metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert "unigate_requests_total" in metrics.text
    assert spoof not in metrics.text


async def test_revoking_one_connection_from_an_app_granted_every_one_is_refused(
    gateway: Gateway, simulators: Simulators, store: tuple[object, dict[str, str]]
) -> None:
    connection = await _connection(gateway, simulators, "grant-star")
    consumer, _, _ = await application(apis=("stockouts",), grants=("*",))
    _, env = store
    app_name = next(row["name"] for row in await manage.list_consumers() if row["id"] == consumer)
    refused = unigate(env, "consumers", "revoke", app_name, connection, check=False)
    assert refused.returncode == 2, refused
    assert "*" in refused.stderr and "(field: connections)" in refused.stderr
    assert "*" in await manage.granted_connections(consumer)  # nothing changed
    # Revoking `*` itself is what takes "every connection" back.
    unigate(env, "consumers", "revoke", app_name, "*")
    assert "*" not in await manage.granted_connections(consumer)


async def test_a_consumer_made_without_saying_it_is_an_admin_gets_no_grant(
    gateway: Gateway, simulators: Simulators
) -> None:
    closed = await _connection(gateway, simulators, "grant-safe")
    # The safe default: a caller that does not say it acts for an admin is held to what a developer may do.
    with pytest.raises(InvalidParameter) as refused:
        await manage.create_consumer(f"app-{uuid.uuid4().hex[:8]}", {"orders": closed})
    assert refused.value.field == "default_connections.orders"
    consumer = await manage.create_consumer(f"app-{uuid.uuid4().hex[:8]}", {"orders": "wdt-demo"})
    assert await manage.granted_connections(consumer) == []  # open: usable, and nothing granted


async def test_a_tracking_checks_both_connections_before_reading_the_stockout(
    gateway: Gateway, simulators: Simulators
) -> None:
    closed = await _connection(gateway, simulators, "grant-track")
    _, key, _ = await application(apis=("stockouts",))
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        await _known(http, "wdt-demo")
        # No such stockout: read first, it would be a 404; the tracking connection is refused before.
        refused = await http.get(
            "/v1/stockouts/NO-SUCH-STOCKOUT/tracking", headers={"X-Tracking-Connection": closed}
        )
        assert refused.status_code == 403, refused.text
        assert (refused.json()["code"], refused.json()["field"]) == (
            "connection_not_granted",
            "X-Tracking-Connection",
        )
        slash = await http.get(
            "/v1/stockouts/NO-SUCH-STOCKOUT/tracking/", headers={"X-Tracking-Connection": closed}
        )
        assert slash.status_code == 403, slash.text  # the same route with a trailing slash
        missing = await http.get("/v1/stockouts/NO-SUCH-STOCKOUT/tracking")
        assert missing.status_code == 404, missing.text  # its defaults: granted, so the read happens
