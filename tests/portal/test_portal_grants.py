"""Connection grants in the portal: a developer chooses defaults among the connections their app may use
only; an admin grants and revokes (admin API, app page) and opens connections; `config` carries both."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.conftest import Gateway
from tests.portal.conftest import Session, unique


async def _closed_connection(admin_api: httpx.AsyncClient, gateway: Gateway) -> str:
    name = unique("closed")
    saved = await admin_api.put(
        f"/connections/{name}",
        json={
            "system": "wangdiantong",
            "base_url": gateway.url,  # never called: these tests only choose it
            "credentials": dict(wdt_sim.DEFAULT_CREDENTIALS),
        },
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["open"] is False  # a new connection is for granted apps only
    return name


async def test_a_developer_may_pick_only_connections_their_app_may_use(
    dev_session: Session, admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    closed = await _closed_connection(admin_api, gateway)
    home = await dev_session.get("/portal")
    assert 'value="wdt-demo"' in home.text  # open (tests/conftest.py), so offered
    assert f'value="{closed}"' not in home.text  # neither open nor granted: not offered
    listed = {row["name"] for row in (await dev_session.call("GET", "/portal/api/connections")).json()}
    assert "wdt-demo" in listed and closed not in listed and "wdt-badsign" not in listed

    # The developer API: a 400 naming the field, worded as for a name that does not exist.
    refused = await dev_session.call(
        "POST", "/portal/api/apps", json={"name": unique("app"), "default_connections": {"orders": closed}}
    )
    assert refused.status_code == 400, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == (
        "invalid_parameter",
        "default_connections.orders",
    )
    unknown = await dev_session.call(
        "POST", "/portal/api/apps", json={"name": unique("app"), "default_connections": {"orders": "no-such"}}
    )
    assert unknown.json()["detail"].replace("'no-such'", repr(closed)) == refused.json()["detail"]
    granting = await dev_session.call(
        "POST", "/portal/api/apps", json={"name": unique("app"), "connections": ["*"]}
    )
    assert granting.status_code == 400 and granting.json()["field"] == "connections"

    # The page: the form posted anyway (a hand-made request) is refused beside the field, nothing made.
    name = unique("app")
    page = await dev_session.form("/portal/apps", {"name": name, "default_stockouts": closed})
    assert page.status_code == 400
    assert "that this app may use" in page.text or "该应用可用" in page.text
    mine = {row["name"] for row in (await dev_session.call("GET", "/portal/api/apps")).json()}
    assert name not in mine

    made = await dev_session.form("/portal/apps", {"name": name, "default_stockouts": "wdt-demo"})
    assert made.status_code == 303, made.text


async def test_an_admin_grants_revokes_and_opens(
    admin_api: httpx.AsyncClient, admin_session: Session, gateway: Gateway
) -> None:
    closed = await _closed_connection(admin_api, gateway)
    other = await _closed_connection(admin_api, gateway)
    created = await admin_api.post(
        "/consumers",
        json={"name": unique("shop"), "default_connections": {"stockouts": closed}, "connections": [other]},
    )
    assert created.status_code == 201, created.text
    app: dict[str, Any] = created.json()
    assert app["connections"] == sorted([closed, other])  # naming a default granted it

    revoked = await admin_api.post(
        f"/consumers/{app['id']}/connections/revoke", json={"connections": [other]}
    )
    assert revoked.json()["connections"] == [closed]
    granted = await admin_api.post(f"/consumers/{app['id']}/connections/grant", json={"connections": ["*"]})
    assert granted.json()["connections"] == sorted(["*", closed])
    unknown = await admin_api.post(
        f"/consumers/{app['id']}/connections/grant", json={"connections": ["no-such-connection"]}
    )
    assert (unknown.status_code, unknown.json()["field"]) == (400, "connections")
    replaced = await admin_api.patch(f"/consumers/{app['id']}", json={"connections": [other]})
    assert replaced.json()["connections"] == [other]

    # The app's page in the portal: the admin's form replaces the grants.
    page = await admin_session.get(f"/portal/apps/{app['id']}")
    assert 'action="/portal/apps/' in page.text and f'value="{closed}"' in page.text
    saved = await admin_session.form(
        f"/portal/apps/{app['id']}/connections", {"connections": [closed, other]}
    )
    assert saved.status_code == 200, saved.text
    assert (await admin_api.get(f"/consumers/{app['id']}")).json()["connections"] == sorted([closed, other])

    opened = await admin_api.put(
        f"/connections/{closed}", json={"system": "wangdiantong", "base_url": gateway.url, "open": True}
    )
    assert opened.json()["open"] is True
    kept = await admin_api.put(
        f"/connections/{closed}", json={"system": "wangdiantong", "base_url": gateway.url}
    )
    assert kept.json()["open"] is True  # left out: kept
    form = await admin_session.get(f"/admin/connections?edit={closed}")
    assert 'name="open" value="1" id="f-open" checked' in form.text


async def test_grants_and_open_round_trip_through_the_configuration(
    admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    shared = await _closed_connection(admin_api, gateway)
    granted = await _closed_connection(admin_api, gateway)
    document = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    assert document["connections"][shared]["open"] is False
    assert document["connections"]["wdt-demo"]["open"] is True
    assert "wdt-badsign" in document["consumers"]["test-app"]["connections"]

    name = unique("cfg")
    document["connections"][shared]["open"] = True
    document["consumers"][name] = {"default_connections": {"orders": "wdt-demo"}, "connections": [granted]}
    applied = await admin_api.post("/config/apply", json={"document": yaml.safe_dump(document)})
    assert applied.status_code == 201, applied.text
    assert (await admin_api.get(f"/connections/{shared}")).json()["open"] is True
    consumers = {row["name"]: row for row in (await admin_api.get("/consumers")).json()}
    # The default it names is granted too, as naming one anywhere else grants it.
    assert consumers[name]["connections"] == sorted([granted, "wdt-demo"])

    again = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    assert again["connections"][shared]["open"] is True
    assert again["consumers"][name]["connections"] == sorted([granted, "wdt-demo"])
    assert again["consumers"]["test-app"]["connections"] == document["consumers"]["test-app"]["connections"]
    preview = await admin_api.post("/config/preview", json={"document": yaml.safe_dump(again)})
    assert preview.json()["changes"] == []  # exported as applied: nothing left to change

    bad = {**again, "consumers": {**again["consumers"], name: {"connections": ["no-such-connection"]}}}
    refused = await admin_api.post("/config/preview", json={"document": yaml.safe_dump(bad)})
    assert (refused.status_code, refused.json()["field"]) == (400, f"consumers.{name}.connections")
