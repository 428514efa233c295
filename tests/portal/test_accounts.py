"""Accounts and sessions as a browser sees them: sign-up, sign-in and out, cookie flags, CSRF on every
form, argon2 hashes, approval, and sessions that end when an admin disables or resets an account."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from gateway.errors import Forbidden
from portal.services import accounts
from portal.services.principal import CLI
from tests.conftest import Gateway
from tests.portal.conftest import PASSWORD, Account, Session, make_account, sign_in, unique


async def test_sign_up_signs_in_and_the_session_cookie_is_httponly_and_samesite(gateway: Gateway) -> None:
    session = Session(httpx.AsyncClient(base_url=gateway.url, timeout=30))
    try:
        await session.get("/portal/signup")
        username = unique("new")
        answer = await session.form("/portal/signup", {"username": username, "password": PASSWORD})
        assert answer.status_code == 303 and answer.headers["location"] == "/portal"
        cookie = next(
            value for name, value in answer.headers.multi_items() if value.startswith("unigate_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert (await session.get("/portal")).status_code == 200
    finally:
        await session.http.aclose()
    with sqlite3.connect(gateway.settings.sqlite_path) as db:
        stored = db.execute(
            "select password_hash from unigate_account where username = ?", (username,)
        ).fetchone()[0]
        sessions = [row[0] for row in db.execute("select key_hash from unigate_portal_session")]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    # Sessions are kept by the hash of the cookie: the table alone lets nobody in.
    assert cookie.split(";")[0].removeprefix("unigate_session=") not in sessions


async def test_sign_up_refuses_bad_input_naming_the_field(gateway: Gateway) -> None:
    session = Session(httpx.AsyncClient(base_url=gateway.url, timeout=30))
    try:
        await session.get("/portal/signup")
        short = await session.form("/portal/signup", {"username": unique("u"), "password": "short"})
        assert short.status_code == 400 and 'id="e-password"' in short.text
        bad_email = await session.form(
            "/portal/signup", {"username": unique("u"), "email": "nope", "password": PASSWORD}
        )
        assert bad_email.status_code == 400 and 'id="e-email"' in bad_email.text
        taken = await session.form("/portal/signup", {"username": "-x", "password": PASSWORD})
        assert taken.status_code == 400 and 'id="e-username"' in taken.text
    finally:
        await session.http.aclose()


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    gateway: Gateway, developer: Account
) -> None:
    session = Session(httpx.AsyncClient(base_url=gateway.url, timeout=30))
    try:
        await session.get("/portal/login")
        wrong = await session.form(
            "/portal/login", {"username": developer.username, "password": "not it at all"}
        )
        unknown = await session.form(
            "/portal/login", {"username": unique("ghost"), "password": "not it at all"}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
        assert "unigate_session" not in wrong.headers.get("set-cookie", "")
    finally:
        await session.http.aclose()


async def test_guessing_passwords_is_stopped_after_ten_failures(gateway: Gateway) -> None:
    account = await make_account("developer", prefix="target")
    session = Session(httpx.AsyncClient(base_url=gateway.url, timeout=30))
    try:
        await session.get("/portal/login")
        for n in range(10):
            wrong = await session.form(
                "/portal/login", {"username": account.username, "password": f"guess {n} wrong"}
            )
            assert wrong.status_code == 401
        blocked = await session.form(
            "/portal/login", {"username": account.username, "password": account.password}
        )
        assert blocked.status_code == 429 and "登录失败次数过多" in blocked.text
        assert 1 <= int(blocked.headers["retry-after"]) <= 600  # when to come back
    finally:
        await session.http.aclose()
    other = await make_account("developer", prefix="bystander")  # other accounts sign in as usual
    await (await sign_in(gateway.url, other)).http.aclose()


async def test_every_form_needs_its_csrf_token(dev_session: Session) -> None:
    await dev_session.get("/portal")
    forged = await dev_session.form("/portal/apps", {"name": unique("csrf")}, csrf=False)
    assert forged.status_code == 403
    wrong = await dev_session.http.post(
        "/portal/apps", data={"name": unique("csrf"), "_csrf_token": "0" * 128}
    )
    assert wrong.status_code == 403
    made = await dev_session.form("/portal/apps", {"name": unique("csrf")})
    assert made.status_code == 303


async def test_sign_out_ends_the_session_on_the_server(gateway: Gateway, developer: Account) -> None:
    session = await sign_in(gateway.url, developer)
    try:
        cookie = session.http.cookies.get("unigate_session")
        await session.get("/portal")
        out = await session.form("/portal/logout")
        assert out.status_code == 303 and out.headers["location"] == "/portal/login"
    finally:
        await session.http.aclose()
    async with httpx.AsyncClient(base_url=gateway.url, cookies={"unigate_session": cookie or ""}) as replay:
        answer = await replay.get("/portal")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login")


async def test_a_session_id_planted_before_sign_in_is_replaced(gateway: Gateway, developer: Account) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        http.cookies.set("unigate_session", "f" * 64)
        session = Session(http)
        await session.get("/portal/login")
        answer = await session.form(
            "/portal/login", {"username": developer.username, "password": developer.password}
        )
        assert answer.status_code == 303
        issued = [v for k, v in answer.headers.multi_items() if k == "set-cookie" and "unigate_session=" in v]
        assert issued and not issued[0].startswith("unigate_session=" + "f" * 64)
    async with httpx.AsyncClient(base_url=gateway.url, cookies={"unigate_session": "f" * 64}) as attacker:
        assert (await attacker.get("/portal")).status_code == 303


async def test_disabling_or_resetting_an_account_ends_its_sessions(gateway: Gateway) -> None:
    for action in ("disable", "reset"):
        account = await make_account("developer", prefix=action)
        session = await sign_in(gateway.url, account)
        try:
            assert (await session.get("/portal")).status_code == 200
            if action == "disable":
                await accounts.set_status(CLI, account.id, "disabled")
            else:
                await accounts.reset_password(CLI, account.id, "a brand new password")
            answer = await session.get("/portal")
            assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login")
        finally:
            await session.http.aclose()


async def test_pending_accounts_wait_for_approval(gateway: Gateway, admin_session: Session) -> None:
    pending = await accounts.signup(unique("wait"), PASSWORD, approval_required=True)
    assert pending["status"] == "pending"
    with pytest.raises(Forbidden):
        await accounts.authenticate(pending["username"], PASSWORD)
    page = await admin_session.get("/admin/accounts")
    assert pending["username"] in page.text
    approved = await admin_session.form(f"/admin/accounts/{pending['id']}/approve")
    assert approved.status_code == 200
    session = await sign_in(gateway.url, Account(pending["id"], pending["username"], PASSWORD, "developer"))
    await session.http.aclose()


async def test_an_admin_reset_shows_the_new_password_once(gateway: Gateway, admin_session: Session) -> None:
    account = await make_account("developer", prefix="forgot")
    await admin_session.get("/admin/accounts")
    answer = await admin_session.form(f"/admin/accounts/{account.id}/reset-password")
    new_password = answer.text.split('id="new-password" class="mono" readonly value="')[1].split('"')[0]
    session = await sign_in(gateway.url, Account(account.id, account.username, new_password, "developer"))
    await session.http.aclose()
    events = (
        await admin_session.call("GET", "/admin/api/audit", params={"action": "account.reset_password"})
    ).json()
    assert account.username in {event["target"] for event in events}
    assert new_password not in str(events)


async def test_a_disabled_admins_token_stops_working(gateway: Gateway) -> None:
    admin = await make_account("admin", prefix="temp-admin")
    _, token = await accounts.create_token(admin.principal, "script")
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get("/admin/api/plans")).status_code == 200
        await accounts.set_status(CLI, admin.id, "disabled")
        assert (await http.get("/admin/api/plans")).status_code == 401
