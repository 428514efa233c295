"""API keys: required on /v1, accepted as Bearer or X-API-Key, refused once revoked."""

from __future__ import annotations

import asyncio

import httpx

from gateway.store import manage
from tests.conftest import Gateway


def test_a_missing_key_is_401(anonymous: httpx.Client) -> None:
    response = anonymous.get("/v1/stockouts")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    # Nothing was sent: the challenge says how to authenticate, with no error (RFC 6750 3.1).
    assert response.headers["www-authenticate"] == 'Bearer realm="unigate"'


def test_an_unknown_key_is_401(anonymous: httpx.Client) -> None:
    response = anonymous.get("/v1/stockouts", headers={"Authorization": "Bearer ug_not-a-real-key"})
    assert response.status_code == 401
    assert "ug_not-a-real-key" not in response.text
    # What was sent is no good: a client should get a new credential, not merely add one.
    assert response.headers["www-authenticate"] == 'Bearer realm="unigate", error="invalid_token"'


def test_x_api_key_header_works(anonymous: httpx.Client, gateway: Gateway) -> None:
    response = anonymous.get("/v1/stockouts", params={"limit": 1}, headers={"X-API-Key": gateway.key})
    assert response.status_code == 200, response.text


def test_health_needs_no_key(anonymous: httpx.Client) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_a_revoked_key_is_refused_within_a_second(gateway: Gateway) -> None:
    issued = await manage.create_key(gateway.consumer_id, name="short-lived")
    headers = {"Authorization": f"Bearer {issued.key}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as http:
        for _ in range(50):  # the new key appears after the next snapshot refresh
            if (await http.get("/v1/stockouts", params={"limit": 1})).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a new key was never accepted")
        await manage.revoke_key(issued.id)
        await asyncio.sleep(1.0)
        assert (await http.get("/v1/stockouts", params={"limit": 1})).status_code == 401
    rows = await manage.list_keys(gateway.consumer_id)
    assert all(len(row["prefix"]) < 16 for row in rows)
