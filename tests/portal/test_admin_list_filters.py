"""The admin API's list filters, and the admin subscriptions page's, refuse a value no row can have (400
naming the filter and its values), instead of answering an empty list that reads as "there are none"."""

from __future__ import annotations

import httpx
import pytest

from tests.portal.conftest import Account, Session


@pytest.mark.parametrize(
    ("path", "field", "allowed"),
    [
        ("/subscriptions", "status", "pending, active, suspended"),
        ("/accounts", "status", "pending, active, disabled"),
        ("/accounts", "role", "admin, developer"),
    ],
)
async def test_an_unknown_filter_value_is_refused_naming_it(
    admin_api: httpx.AsyncClient, path: str, field: str, allowed: str
) -> None:
    refused = await admin_api.get(path, params={field: "bogus"})
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert (problem["code"], problem["field"]) == ("invalid_parameter", field)
    assert allowed in problem["detail"]


async def test_a_known_filter_value_still_filters(admin_api: httpx.AsyncClient, admin: Account) -> None:
    admins = (await admin_api.get("/accounts", params={"role": "admin", "status": "active"})).json()
    assert admin.username in {row["username"] for row in admins}
    assert {row["role"] for row in admins} == {"admin"}
    active = await admin_api.get("/subscriptions", params={"status": "active"})
    assert active.status_code == 200 and {row["status"] for row in active.json()} <= {"active"}


async def test_the_subscriptions_page_refuses_an_unknown_status(admin_session: Session) -> None:
    refused = await admin_session.get("/admin/subscriptions", params={"status": "bogus"})
    assert refused.status_code == 400
    assert "the status is one of: pending, active, suspended" in refused.text
    assert (await admin_session.get("/admin/subscriptions", params={"status": "active"})).status_code == 200
