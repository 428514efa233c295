"""A developer cannot name, as their app's default for an API, a connection whose system does not serve
it (the store's rule, tests/store/test_default_support.py), over real HTTP: 400 naming the field."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.portal.conftest import Session, unique


async def test_a_developer_cannot_make_tracking_their_stockouts_default(
    gateway: Gateway, dev_session: Session
) -> None:
    await dev_session.get("/portal")
    made = await dev_session.call(
        "POST",
        "/portal/api/apps",
        json={"name": unique("app"), "default_connections": {"stockouts": "kd100-demo"}},
    )
    assert made.status_code == 400 and made.json()["field"] == "default_connections.stockouts"
    app = (await dev_session.call("POST", "/portal/api/apps", json={"name": unique("app")})).json()
    edited = await dev_session.call(
        "PATCH", f"/portal/api/apps/{app['id']}", json={"default_connections": {"orders": "kd100-demo"}}
    )
    assert edited.status_code == 400, edited.text
    assert edited.json()["field"] == "default_connections.orders"
    assert "served by wangdiantong" in edited.json()["detail"]
    kept = await dev_session.call("GET", f"/portal/api/apps/{app['id']}")
    assert kept.json()["default_connections"] == {}  # nothing of the refused edit was kept
