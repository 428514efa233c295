"""What a user sees when a form or a change is refused, over real HTTP: the error beside the field it is
about, what was typed kept, nothing cached that holds a secret, no lost update between two admins."""

from __future__ import annotations

import re

import httpx
import yaml

from tests.conftest import Gateway
from tests.portal.conftest import PASSWORD, Session, make_account, sign_in, unique


def field_error(html: str, field: str) -> str:
    """The message the page shows beside `field` (the macro's `e-<field>` element), or ""."""
    match = re.search(rf'id="e-{re.escape(field)}"[^>]*>([^<]*)<', html)
    return match.group(1) if match else ""


def input_value(html: str, field: str) -> str | None:
    match = re.search(rf'<input id="f-{re.escape(field)}"[^>]*value="([^"]*)"', html)
    return match.group(1) if match else None


async def test_secrets_shown_once_are_never_cached(dev_session: Session) -> None:
    await dev_session.get("/portal")
    app = (await dev_session.call("POST", "/portal/api/apps", json={"name": unique("nocache")})).json()
    issued = await dev_session.call("POST", f"/portal/api/apps/{app['id']}/keys", json={"name": "ci"})
    assert issued.status_code == 201 and issued.json()["key"].startswith("ug_")
    assert issued.headers["cache-control"] == "no-store"

    await dev_session.get(f"/portal/apps/{app['id']}")
    page = await dev_session.form(f"/portal/apps/{app['id']}/keys", {"name": "web"})
    assert 'data-testid="new-key"' in page.text
    assert page.headers["cache-control"] == "no-store"


async def test_the_apps_address_left_by_a_refused_form_is_not_a_405(dev_session: Session) -> None:
    await dev_session.get("/portal")
    refused = await dev_session.form("/portal/apps", {"name": "Not A Name"})
    assert refused.status_code == 400
    # Reloading that address, or switching language from it (`next` is the current path), lands home.
    answer = await dev_session.get("/portal/apps")
    assert answer.status_code == 303 and answer.headers["location"] == "/portal"
    switched = await dev_session.form("/portal/locale", {"locale": "en", "next": "/portal/apps"})
    assert switched.headers["location"] == "/portal/apps"
    assert (await dev_session.http.get("/portal/apps", follow_redirects=True)).status_code == 200


async def test_a_plan_is_edited_from_its_own_values_and_a_refused_save_keeps_every_choice(
    admin_session: Session,
) -> None:
    name = unique("tier")
    made = await admin_session.form(
        "/admin/plans",
        {
            "name": name,
            "description": "gold",
            "rate_limits.per_minute": "600",
            "strategy": "moving-window",
            "quotas.per_day": "1000",
            "priority": "high",
            "apis": ["stockouts", "orders"],
        },
    )
    assert made.status_code == 303, made.text

    edit = await admin_session.get(f"/admin/plans?edit={name}")
    assert input_value(edit.text, "rate_limits.per_minute") == "600"
    assert input_value(edit.text, "quotas.per_day") == "1000"
    assert re.search(r'<option value="high" selected>', edit.text)
    assert re.search(r'<option value="moving-window" selected>', edit.text)
    assert re.search(r'value="orders" checked', edit.text)
    assert not re.search(r'value="logistics" checked', edit.text)
    assert re.search(r'name="existing" value="1" checked', edit.text)

    refused = await admin_session.form(
        "/admin/plans",
        {
            "name": name,
            "existing": "1",
            "description": "gold",
            "rate_limits.per_minute": "600",
            "quotas.per_day": "1000",
            "quotas.per_month": "10",  # less than a day's quota: refused
            "priority": "low",
            "apis": ["orders"],
        },
    )
    assert refused.status_code == 400
    # The message is beside the field it is about, not a banner naming an internal path.
    assert "a month is less than" in field_error(refused.text, "quotas.per_month")
    assert "config." not in refused.text.split('id="plan-form-h"')[1]
    assert re.search(r'<option value="low" selected>', refused.text)
    assert re.search(r'value="orders" checked', refused.text)
    assert not re.search(r'value="stockouts" checked', refused.text)

    # Changing the description through the prefilled form keeps every limit.
    kept = await admin_session.form(
        "/admin/plans",
        {
            "name": name,
            "existing": "1",
            "description": "gold plus",
            "rate_limits.per_minute": "600",
            "strategy": "moving-window",
            "quotas.per_day": "1000",
            "priority": "high",
            "apis": ["stockouts", "orders"],
        },
    )
    assert kept.status_code == 303
    plan = next(p for p in (await admin_session.call("GET", "/admin/api/plans")).json() if p["name"] == name)
    assert plan["description"] == "gold plus"
    assert plan["config"]["rate_limits"]["per_minute"] == 600
    assert plan["config"]["rate_limits"]["strategy"] == "moving-window"
    assert plan["config"]["quotas"]["per_day"] == 1000


async def test_a_refused_connection_edit_stays_an_edit(admin_session: Session) -> None:
    page = await admin_session.get("/admin/connections?edit=wdt-demo")
    assert "编辑连接" in page.text  # "Edit connection"
    refused = await admin_session.form(
        "/admin/connections",
        {
            "name": "wdt-demo",
            "system": "wangdiantong",
            "base_url": "ftp://nowhere",
            "credential_appsecret": "typed-but-refused",
            "timeout_seconds": "2.5",
        },
    )
    assert refused.status_code == 400
    assert "编辑连接" in refused.text and "添加连接" not in refused.text
    assert "http:// 或 https://" in field_error(refused.text, "base_url")  # said in the page's language
    assert "typed-but-refused" not in refused.text  # a secret is not echoed back ...
    assert "请重新输入" in refused.text  # ... and the page says to type it again
    assert input_value(refused.text, "timeout_seconds") == "2.5"
    assert 'step="any"' in refused.text  # fractional seconds are allowed by the browser


async def test_applying_a_configuration_someone_changed_since_the_preview_is_refused(
    admin_api: httpx.AsyncClient,
) -> None:
    exported = (await admin_api.get("/config")).json()["document"]
    mine = unique("mine")
    document = exported.replace("consumers:\n", f"consumers:\n  {mine}:\n    description: mine\n", 1)
    preview = (await admin_api.post("/config/preview", json={"document": document})).json()
    assert preview["base"]

    # Another admin adds a connection meanwhile; applying the previewed document would delete it.
    theirs = unique("theirs")
    added = await admin_api.put(
        f"/connections/{theirs}",
        json={
            "system": "kuaidi100",
            "base_url": "http://127.0.0.1:9",
            "credentials": {"customer": "c", "key": "k"},
        },
    )
    assert added.status_code == 200, added.text
    stale = await admin_api.post("/config/apply", json={"document": document, "base": preview["base"]})
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict" and stale.json()["field"] == "base"
    assert theirs in {row["name"] for row in (await admin_api.get("/connections")).json()}

    # Previewed again, the deletion is in plain sight; made from today's export, the apply goes through.
    again = (await admin_api.post("/config/preview", json={"document": document})).json()
    assert {"kind": "connection", "name": theirs, "action": "delete"} in again["changes"]
    current = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    current["consumers"][mine] = {"description": "mine"}
    document = yaml.safe_dump(current, allow_unicode=True)
    fresh = (await admin_api.post("/config/preview", json={"document": document})).json()
    applied = await admin_api.post("/config/apply", json={"document": document, "base": fresh["base"]})
    assert applied.status_code == 201, applied.text
    assert theirs in {row["name"] for row in (await admin_api.get("/connections")).json()}
    assert mine in {row["name"] for row in (await admin_api.get("/consumers")).json()}
    assert (await admin_api.delete(f"/connections/{theirs}")).status_code == 204


async def test_a_user_changes_their_own_password_and_their_other_sessions_end(gateway: Gateway) -> None:
    account = await make_account("developer", prefix="pw")
    here, elsewhere = await sign_in(gateway.url, account), await sign_in(gateway.url, account)
    try:
        await here.get("/portal/account")
        wrong = await here.form(
            "/portal/account/password", {"current_password": "not it at all", "new_password": "x" * 12}
        )
        assert wrong.status_code == 400 and field_error(wrong.text, "current_password") == "当前密码不正确"
        short = await here.form(
            "/portal/account/password", {"current_password": PASSWORD, "new_password": "short"}
        )
        assert short.status_code == 400 and "10" in field_error(short.text, "new_password")

        new = {"current_password": PASSWORD, "new_password": "a new long passphrase"}
        changed = await here.form("/portal/account/password", new)
        assert changed.status_code == 200 and 'data-testid="password-changed"' in changed.text
        assert (await here.get("/portal")).status_code == 200  # this session goes on
        assert (await elsewhere.get("/portal")).status_code == 303  # the other one is signed out
    finally:
        await here.http.aclose()
        await elsewhere.http.aclose()
    account.password = "a new long passphrase"
    await (await sign_in(gateway.url, account)).http.aclose()
