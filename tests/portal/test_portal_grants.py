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
    rows = (await dev_session.call("GET", "/portal/api/connections")).json()
    listed = {row["name"] for row in rows}
    assert "wdt-demo" in listed and closed not in listed and "wdt-badsign" not in listed
    # What a developer needs to choose a default, and nothing of how a backend is reached.
    assert all(set(row) == {"name", "system"} for row in rows), rows

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
    # Granted every connection, it would still use one revoked by name: refused, saying so.
    useless = await admin_api.post(
        f"/consumers/{app['id']}/connections/revoke", json={"connections": [closed]}
    )
    assert (useless.status_code, useless.json()["field"]) == (400, "connections"), useless.text
    assert "*" in useless.json()["detail"]
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
    # `connections` is the whole of its grants: the (open) default it names adds nothing.
    assert consumers[name]["connections"] == [granted]

    again = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    assert again["connections"][shared]["open"] is True
    assert again["consumers"][name]["connections"] == [granted]
    assert again["consumers"]["test-app"]["connections"] == document["consumers"]["test-app"]["connections"]
    preview = await admin_api.post("/config/preview", json={"document": yaml.safe_dump(again)})
    assert preview.json()["changes"] == []  # exported as applied: nothing left to change

    bad = {**again, "consumers": {**again["consumers"], name: {"connections": ["no-such-connection"]}}}
    refused = await admin_api.post("/config/preview", json={"document": yaml.safe_dump(bad)})
    assert (refused.status_code, refused.json()["field"]) == (400, f"consumers.{name}.connections")


async def test_an_admin_edit_grants_only_the_defaults_it_changes(
    admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    first = await _closed_connection(admin_api, gateway)
    second = await _closed_connection(admin_api, gateway)
    created = await admin_api.post(
        "/consumers", json={"name": unique("shop"), "default_connections": {"stockouts": first}}
    )
    app: dict[str, Any] = created.json()
    assert app["connections"] == [first]
    revoked = await admin_api.post(
        f"/consumers/{app['id']}/connections/revoke", json={"connections": [first]}
    )
    assert revoked.json()["connections"] == []

    # An edit that leaves the revoked default as it was does not grant it again.
    edited = await admin_api.patch(
        f"/consumers/{app['id']}",
        json={"description": "edited", "default_connections": {"stockouts": first}},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["connections"] == []
    # A default the edit names anew is granted by naming it; the unchanged one still is not.
    changed = await admin_api.patch(
        f"/consumers/{app['id']}", json={"default_connections": {"stockouts": first, "orders": second}}
    )
    assert changed.json()["connections"] == [second]


async def test_a_configuration_carries_revoked_defaults_and_its_preview_shows_grant_changes(
    admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    erp = await _closed_connection(admin_api, gateway)
    other = await _closed_connection(admin_api, gateway)
    name = unique("cfg")
    created = await admin_api.post(
        "/consumers", json={"name": name, "default_connections": {"stockouts": erp}, "connections": [other]}
    )
    app: dict[str, Any] = created.json()
    await admin_api.post(f"/consumers/{app['id']}/connections/revoke", json={"connections": [erp]})
    document = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    assert document["consumers"][name]["connections"] == [other]

    # Applied where the app is new (another database, here another name): the revoke is kept.
    copy = unique("cfg")
    document["consumers"][copy] = dict(document["consumers"][name])
    applied = await admin_api.post("/config/apply", json={"document": yaml.safe_dump(document)})
    assert applied.status_code == 201, applied.text
    consumers = {row["name"]: row for row in (await admin_api.get("/consumers")).json()}
    assert consumers[copy]["connections"] == [other]
    assert consumers[name]["connections"] == [other]

    # A document without `connections` for an app grants it its defaults, and nothing else: the preview
    # says so before anything is written.
    document = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    del document["consumers"][name]["connections"]
    preview = await admin_api.post("/config/preview", json={"document": yaml.safe_dump(document)})
    assert preview.status_code == 200, preview.text
    assert {"kind": "consumer", "name": name, "action": "update"} in preview.json()["changes"]
    assert f"-  - {other}" in preview.json()["diff"] or f"-    - {other}" in preview.json()["diff"]
    assert f"+    - {erp}" in preview.json()["diff"] or f"+  - {erp}" in preview.json()["diff"]
    applied = await admin_api.post("/config/apply", json={"document": yaml.safe_dump(document)})
    assert applied.status_code == 201, applied.text
    assert (await admin_api.get(f"/consumers/{app['id']}")).json()["connections"] == [erp]
