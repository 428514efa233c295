"""Developer self-service over real HTTP: a developer reaches only their own apps; keys rotate with an
overlap and revoke at once; OAuth2 clients issue tokens; usage and the masked request log follow calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import TEST_PLAN, Gateway
from tests.portal.conftest import Session, make_account, unique


async def new_app(session: Session, **extra: Any) -> dict[str, Any]:
    await session.get("/portal")
    answer = await session.call(
        "POST",
        "/portal/api/apps",
        json={"name": unique("app"), "default_connections": {"stockouts": "wdt-demo"}, **extra},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def status_of(
    gateway: Gateway, token: str, expected: int, path: str = "/v1/stockouts?limit=1"
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for _ in range(100):
            answer = await http.get(path, headers={"Authorization": f"Bearer {token}"})
            if answer.status_code == expected:
                return answer
            await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {expected}; last {answer.status_code}: {answer.text}")


async def test_a_developer_reaches_only_their_own_apps(
    dev_session: Session, signed_in: Callable[[Any], Awaitable[Session]]
) -> None:
    mine = await new_app(dev_session)
    other = await signed_in(await make_account("developer", prefix="eve"))
    theirs = await new_app(other)

    listed = {row["name"] for row in (await dev_session.call("GET", "/portal/api/apps")).json()}
    assert mine["name"] in listed and theirs["name"] not in listed
    for method, path in [
        ("GET", f"/portal/api/apps/{theirs['id']}"),
        ("GET", f"/portal/api/apps/{theirs['id']}/keys"),
        ("POST", f"/portal/api/apps/{theirs['id']}/keys"),
        ("GET", f"/portal/api/apps/{theirs['id']}/usage"),
        ("GET", f"/portal/api/apps/{theirs['id']}/requests"),
        ("GET", f"/portal/api/apps/{theirs['id']}/subscriptions"),
        ("POST", f"/portal/api/apps/{theirs['id']}/oauth-clients"),
    ]:
        body = {"scopes": ["orders:read"]} if "oauth" in path else {}
        answer = await dev_session.call(method, path, json=body if method == "POST" else None)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "not_found"
    page = await dev_session.get(f"/portal/apps/{theirs['id']}")
    assert page.status_code == 404 and theirs["name"] not in page.text
    theirs_key = (await other.call("POST", f"/portal/api/apps/{theirs['id']}/keys", json={})).json()
    revoke = await dev_session.call("POST", f"/portal/api/apps/{mine['id']}/keys/{theirs_key['id']}/revoke")
    assert revoke.status_code == 404  # someone else's key through one's own app: still not found


async def test_keys_rotate_with_an_overlap_and_revoke_at_once(dev_session: Session, gateway: Gateway) -> None:
    app = await new_app(dev_session)
    await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/subscriptions", json={"api": "stockouts", "plan": TEST_PLAN}
    )
    first = (await dev_session.call("POST", f"/portal/api/apps/{app['id']}/keys", json={"name": "ci"})).json()
    assert first["key"].startswith(first["prefix"]) and first["state"] == "active"
    await status_of(gateway, first["key"], 200)

    rotated = await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/keys/{first['id']}/rotate", json={"overlap_hours": 1}
    )
    second = rotated.json()
    keys = {
        row["id"]: row for row in (await dev_session.call("GET", f"/portal/api/apps/{app['id']}/keys")).json()
    }
    assert keys[first["id"]]["state"] == "expiring" and keys[second["id"]]["state"] == "active"
    assert keys[second["id"]]["name"] == "ci" and all("key" not in row for row in keys.values())
    await status_of(gateway, second["key"], 200)
    await status_of(gateway, first["key"], 200)  # still inside the overlap

    third = (
        await dev_session.call(
            "POST", f"/portal/api/apps/{app['id']}/keys/{second['id']}/rotate", json={"overlap_hours": 0}
        )
    ).json()
    await status_of(gateway, second["key"], 401)  # no overlap: the old key stops now
    await status_of(gateway, third["key"], 200)

    bad = await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/keys/{third['id']}/rotate", json={"overlap_hours": 100000}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "overlap_hours"
    page = await dev_session.get(f"/portal/apps/{app['id']}")
    revoked = await dev_session.form(f"/portal/apps/{app['id']}/keys/{third['id']}/revoke")
    assert revoked.status_code == 200 and page.status_code == 200
    answer = await status_of(gateway, third["key"], 401)
    assert answer.json()["code"] == "unauthorized"


async def test_app_and_key_input_is_validated_naming_the_field(dev_session: Session) -> None:
    await dev_session.get("/portal")
    for body, field in [
        ({"name": "Has Spaces"}, "name"),
        (
            {"name": unique("a"), "default_connections": {"stockouts": "missing"}},
            "default_connections.stockouts",
        ),
        (
            {"name": unique("a"), "default_connections": {"payroll": "wdt-demo"}},
            "default_connections.payroll",
        ),
        ({}, "name"),
        ({"name": unique("a"), "colour": "red"}, "colour"),
    ]:
        answer = await dev_session.call("POST", "/portal/api/apps", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "invalid_parameter" and answer.json()["field"] == field
    app = await new_app(dev_session)
    expiry = await dev_session.call("POST", f"/portal/api/apps/{app['id']}/keys", json={"expires_in_days": 0})
    assert expiry.status_code == 400 and expiry.json()["field"] == "expires_in_days"
    plan = await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/subscriptions", json={"api": "stockouts", "plan": "none-such"}
    )
    assert plan.status_code == 400 and plan.json()["field"] == "plan"
    scopes = await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/oauth-clients", json={"scopes": ["root"]}
    )
    assert scopes.status_code == 400 and scopes.json()["field"] == "scopes[0]"


async def test_an_oauth_client_made_in_the_portal_gets_tokens(dev_session: Session, gateway: Gateway) -> None:
    app = await new_app(dev_session)
    await dev_session.call(
        "POST", f"/portal/api/apps/{app['id']}/subscriptions", json={"api": "stockouts", "plan": TEST_PLAN}
    )
    client = (
        await dev_session.call(
            "POST",
            f"/portal/api/apps/{app['id']}/oauth-clients",
            json={"scopes": ["stockouts:read"], "name": "bi"},
        )
    ).json()
    assert client["client_id"].startswith("ugc_") and client["client_secret"]
    listed = (await dev_session.call("GET", f"/portal/api/apps/{app['id']}/oauth-clients")).json()
    assert [row["client_id"] for row in listed] == [client["client_id"]] and "client_secret" not in listed[0]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for _ in range(50):  # the client reaches the gateway's snapshot within its poll interval
            token = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
            )
            if token.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert token.status_code == 200, token.text
    await status_of(gateway, token.json()["access_token"], 200)
    # Its scopes changed: the token held loses stockouts:read at once.
    scopes = f"/portal/api/apps/{app['id']}/oauth-clients/{client['client_id']}/scopes"
    refused = await dev_session.call("PUT", scopes, json={"scopes": []})
    assert refused.status_code == 400 and refused.json()["field"] == "scopes"
    changed = await dev_session.call("PUT", scopes, json={"scopes": ["orders:read"]})
    assert changed.status_code == 200 and changed.json()["scopes"] == ["orders:read"]
    await status_of(gateway, token.json()["access_token"], 403)
    await dev_session.call("POST", f"/portal/api/apps/{app['id']}/oauth-clients/{client['client_id']}/revoke")
    await status_of(gateway, token.json()["access_token"], 401)


async def test_usage_and_the_recent_request_log_follow_calls_with_personal_data_masked(
    dev_session: Session, gateway: Gateway
) -> None:
    app = await new_app(dev_session, default_connections={"stockouts": "wdt-demo", "logistics": "kd100-demo"})
    for api in ("stockouts", "logistics"):
        await dev_session.call(
            "POST", f"/portal/api/apps/{app['id']}/subscriptions", json={"api": api, "plan": TEST_PLAN}
        )
    key = (await dev_session.call("POST", f"/portal/api/apps/{app['id']}/keys", json={})).json()["key"]
    await status_of(gateway, key, 200)
    phone = "13812345678"
    async with httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        await http.get(
            "/v1/logistics/tracking",
            params={"carrier": "zhongtong", "tracking_no": "75000000001", "phone": phone},
        )
        assert (await http.get("/v1/stockouts", params={"limit": 500})).status_code == 400
    for _ in range(100):  # metering writes in batches, off the hot path
        usage = (await dev_session.call("GET", f"/portal/api/apps/{app['id']}/usage")).json()
        requests = (await dev_session.call("GET", f"/portal/api/apps/{app['id']}/requests")).json()
        if len(requests) >= 3 and {"stockouts", "logistics"} <= set(usage["apis"]):
            break
        await asyncio.sleep(0.1)
    stockouts = usage["apis"]["stockouts"]
    assert stockouts["today"] >= 2 and stockouts["series"][-1]["errors"] >= 1
    assert stockouts["series"][-1]["p50_ms"] is not None and len(stockouts["series"]) == 14
    assert {row["path"] for row in requests} >= {"/v1/stockouts", "/v1/logistics/tracking"}
    assert phone not in str(requests)
    page = await dev_session.get(f"/portal/apps/{app['id']}")
    assert "/v1/logistics/tracking" in page.text and phone not in page.text
