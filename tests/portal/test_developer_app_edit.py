"""A developer edits their app's description and default connections (PATCH /portal/api/apps/{id} and the
app page), over real HTTP: only among connections the app may use, granting nothing, others' apps unseen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.conftest import TEST_PLAN, Gateway, Simulators
from tests.portal.conftest import Account, Session, make_account, unique
from tests.portal.test_browser import sign_in


async def _connection(admin_api: httpx.AsyncClient, url: str) -> str:
    """A closed (not open) connection to `url`: usable only by apps granted it."""
    name = unique("edit")
    saved = await admin_api.put(
        f"/connections/{name}",
        json={"system": "wangdiantong", "base_url": url, "credentials": dict(wdt_sim.DEFAULT_CREDENTIALS)},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["open"] is False
    return name


async def _app_with_key(session: Session) -> tuple[dict[str, Any], str]:
    await session.get("/portal")
    made = await session.call(
        "POST",
        "/portal/api/apps",
        json={
            "name": unique("app"),
            "description": "first",
            "default_connections": {"stockouts": "wdt-demo"},
        },
    )
    assert made.status_code == 201, made.text
    app: dict[str, Any] = made.json()
    subscribed = await session.call(
        "POST", f"/portal/api/apps/{app['id']}/subscriptions", json={"api": "stockouts", "plan": TEST_PLAN}
    )
    assert subscribed.status_code == 201, subscribed.text
    key = (await session.call("POST", f"/portal/api/apps/{app['id']}/keys", json={})).json()["key"]
    return app, key


async def _served_through(gateway: Gateway, key: str, connection: str) -> None:
    """Calls /v1/stockouts with the key until its items say they came through `connection` (a node applies
    a config change at its next snapshot refresh)."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for _ in range(100):
            answer = await http.get(
                "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {key}"}
            )
            if answer.status_code == 200 and answer.json()["items"][0]["connection"] == connection:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"never served through {connection}: {answer.status_code} {answer.text[:300]}")


async def test_a_developer_changes_description_and_defaults_among_usable_connections_only(
    dev_session: Session,
    admin_api: httpx.AsyncClient,
    gateway: Gateway,
    simulators: Simulators,
    signed_in: Callable[[Account], Awaitable[Session]],
) -> None:
    app, key = await _app_with_key(dev_session)
    await _served_through(gateway, key, "wdt-demo")
    granted = await _connection(admin_api, simulators.wdt.url)
    closed = await _connection(admin_api, simulators.wdt.url)
    grant = await admin_api.post(f"/consumers/{app['id']}/connections/grant", json={"connections": [granted]})
    assert grant.json()["connections"] == [granted], grant.text

    edited = await dev_session.call(
        "PATCH",
        f"/portal/api/apps/{app['id']}",
        json={"description": "second", "default_connections": {"stockouts": granted, "orders": "wdt-target"}},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["description"] == "second"
    assert edited.json()["default_connections"] == {"stockouts": granted, "orders": "wdt-target"}
    # The next calls with the app's key go through the new default.
    await _served_through(gateway, key, granted)

    # Ungranted and closed: refused naming the field, worded as for a name that does not exist.
    refused = await dev_session.call(
        "PATCH",
        f"/portal/api/apps/{app['id']}",
        json={"description": "third", "default_connections": {"stockouts": closed}},
    )
    assert refused.status_code == 400, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == (
        "invalid_parameter",
        "default_connections.stockouts",
    )
    assert closed in refused.json()["detail"]
    # Asking for grants is not a field of this API at all.
    asking = await dev_session.call("PATCH", f"/portal/api/apps/{app['id']}", json={"connections": ["*"]})
    assert asking.status_code == 400, asking.text
    only_description = await dev_session.call(
        "PATCH", f"/portal/api/apps/{app['id']}", json={"description": "fourth"}
    )
    assert only_description.json()["default_connections"] == {"stockouts": granted, "orders": "wdt-target"}

    now = (await dev_session.call("GET", f"/portal/api/apps/{app['id']}")).json()
    assert now["description"] == "fourth"
    assert now["default_connections"] == {"stockouts": granted, "orders": "wdt-target"}
    # The developer's edits granted nothing: not the open default they named, not the closed one refused.
    assert (await admin_api.get(f"/consumers/{app['id']}")).json()["connections"] == [granted]

    # Someone else's app: not found, and left as it was.
    other = await signed_in(await make_account("developer", prefix="eve"))
    theirs, _ = await _app_with_key(other)
    foreign = await dev_session.call(
        "PATCH", f"/portal/api/apps/{theirs['id']}", json={"description": "mine now"}
    )
    assert (foreign.status_code, foreign.json()["code"]) == (404, "not_found"), foreign.text
    page = await dev_session.form(f"/portal/apps/{theirs['id']}/settings", {"description": "mine now"})
    assert page.status_code == 404
    assert (await other.call("GET", f"/portal/api/apps/{theirs['id']}")).json()["description"] == "first"


async def test_the_app_page_form_offers_usable_connections_and_keeps_what_was_typed_when_refused(
    dev_session: Session, admin_api: httpx.AsyncClient, gateway: Gateway, simulators: Simulators
) -> None:
    app, _ = await _app_with_key(dev_session)
    granted = await _connection(admin_api, simulators.wdt.url)
    closed = await _connection(admin_api, simulators.wdt.url)
    await admin_api.post(f"/consumers/{app['id']}/connections/grant", json={"connections": [granted]})

    page = await dev_session.get(f"/portal/apps/{app['id']}")
    assert f'action="/portal/apps/{app["id"]}/settings"' in page.text
    assert f'value="{granted}"' in page.text and 'value="wdt-target"' in page.text
    assert f'value="{closed}"' not in page.text

    # A hand-made post naming the closed one: the page again, the error beside the field, the text kept.
    refused = await dev_session.form(
        f"/portal/apps/{app['id']}/settings", {"description": "typed here", "default_stockouts": closed}
    )
    assert refused.status_code == 400
    assert 'id="settings-e-default-stockouts"' in refused.text
    assert 'value="typed here"' in refused.text
    assert (await dev_session.call("GET", f"/portal/api/apps/{app['id']}")).json()["description"] == "first"

    saved = await dev_session.form(
        f"/portal/apps/{app['id']}/settings", {"description": "from the page", "default_stockouts": granted}
    )
    assert saved.status_code == 200, saved.text
    now = (await dev_session.call("GET", f"/portal/api/apps/{app['id']}")).json()
    assert (now["description"], now["default_connections"]) == ("from the page", {"stockouts": granted})
    assert (await admin_api.get(f"/consumers/{app['id']}")).json()["connections"] == [granted]


async def test_in_the_browser_the_form_saves_in_place(browser: Browser, gateway: Gateway) -> None:
    developer = await make_account("developer", prefix="dev")
    context = await browser.new_context(base_url=gateway.url)
    page = await context.new_page()
    try:
        await sign_in(page, developer)
        await page.fill("#f-name", unique("app"))
        await page.click("form[action='/portal/apps'] button[type=submit]")
        await page.wait_for_url("**/portal/apps/*")
        await page.fill("#settings-f-description", "edited in the browser")
        await page.select_option("#settings-f-default-orders", "wdt-target")
        await page.click("#settings button[type=submit]")
        await expect(page.locator("#settings .notice")).to_be_visible()
        await expect(page.locator("#settings-f-default-orders")).to_have_value("wdt-target")
        await page.reload()
        await expect(page.locator("#settings-f-description")).to_have_value("edited in the browser")
    finally:
        await context.close()
