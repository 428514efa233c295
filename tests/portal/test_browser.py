"""The portal in a real browser: Debian's Chromium, headless, driven by Playwright against a real
`unigate serve` process. Two journeys (a developer's and an admin's), with a screenshot of every main
page saved to tests/artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.store.accounts import PortalSession
from portal import nav
from portal.services import apps, plans
from portal.sessions import SESSION_COOKIE
from tests.conftest import TEST_PLAN, Gateway, Simulators
from tests.portal.conftest import PASSWORD, Account, make_account, unique

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture
async def page(browser: Browser, gateway: Gateway) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=gateway.url, viewport={"width": 1280, "height": 900})
    # Nothing may come from elsewhere: every script, style and font is the gateway's own.
    foreign: list[str] = []
    context.on(
        "request",
        lambda request: None if request.url.startswith(gateway.url) else foreign.append(request.url),
    )
    tab = await context.new_page()
    try:
        yield tab
    finally:
        await context.close()
    assert not foreign, f"pages fetched from outside the gateway: {foreign}"


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, account: Account) -> None:
    await page.goto("/portal/login")
    await page.fill("#f-username", account.username)
    await page.fill("#f-password", account.password)
    await page.click("form[action='/portal/login'] button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def call_until(url: str, key: str, status: int) -> httpx.Response:
    """Calls /v1/stockouts until it answers `status` (the gateway picks up config changes within 0.2 s)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(100):
            answer = await http.get(
                "/v1/stockouts", params={"limit": 2}, headers={"Authorization": f"Bearer {key}"}
            )
            if answer.status_code == status:
                return answer
            await asyncio.sleep(0.1)
    raise AssertionError(f"/v1/stockouts never answered {status}: {answer.status_code} {answer.text}")


async def test_developer_signs_up_creates_an_app_and_a_key_calls_and_sees_usage(
    page: Page, gateway: Gateway
) -> None:
    username = unique("alice")
    await page.goto("/portal/signup")
    await shot(page, "01-signup")
    await page.fill("#f-username", username)
    await page.fill("#f-email", f"{username}@example.com")
    await page.fill("#f-password", PASSWORD)
    await page.click("form[action='/portal/signup'] button[type=submit]")
    await expect(page).to_have_url(f"{gateway.url}/portal")
    await shot(page, "02-my-apps-empty")

    app_name = unique("shop")
    await page.fill("#f-name", app_name)
    await page.fill("#f-description", "our mini-program")
    await page.select_option("#f-default-stockouts", "wdt-demo")
    await page.click("form[action='/portal/apps'] button[type=submit]")
    await expect(page.locator("h1")).to_contain_text(app_name)

    await page.select_option("#f-api", "stockouts")
    await page.select_option("#f-plan", TEST_PLAN)
    await page.click("#subscriptions form.inline button[type=submit]")
    await expect(page.locator("[data-testid=sub-stockouts]")).to_have_text("有效")  # Chinese by default

    await page.fill("#keys #f-name", "ci")
    await page.click("#keys form.inline button[type=submit]")
    secret = page.locator("[data-testid=new-key]")
    await expect(secret).to_be_visible()
    key = await secret.input_value()
    assert key.startswith("ug_")
    await page.click("[data-copy='#new-key-secret']")
    await expect(page.locator("[data-copy='#new-key-secret']")).to_have_attribute("data-copied", "true")
    await expect(page.locator("#keys tbody tr")).to_have_count(1)
    await expect(page.locator("#keys tbody tr td.mono")).to_have_text(f"{key[:11]}…")
    await shot(page, "03-app-with-new-key")

    answer = await call_until(gateway.url, key, 200)
    assert answer.json()["items"], "the seeded simulator has stockouts"

    # Try-it in the API reference, with the developer's own key.
    await page.goto("/portal/reference")
    await page.fill("#try-key", key)
    path = page.locator(".opblock-summary-path[data-path='/v1/stockouts']")
    operation = page.locator(".opblock-get", has=path)
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    await expect(operation.locator(".live-responses-table tbody td.response-col_status").first).to_have_text(
        "200", timeout=20_000
    )
    await shot(page, "04-api-reference-try-it")

    # The calls reach the app's usage (metering writes in batches, off the hot path).
    await page.goto("/portal")
    await page.click(f"text={app_name}")
    for _ in range(50):
        if await page.locator("[data-testid=recent-requests] tbody tr").count() >= 2:
            break
        await asyncio.sleep(0.3)
        await page.reload()
    rows = page.locator("[data-testid=recent-requests] tbody tr")
    await expect(rows.first).to_contain_text("/v1/stockouts")
    await expect(page.locator("[data-testid=usage-stockouts]")).to_contain_text("今日")
    await expect(page.locator("canvas.usage-chart")).to_have_count(1)
    await shot(page, "05-app-usage")


async def test_admin_connects_a_backend_plans_approves_and_revokes(
    page: Page, gateway: Gateway, simulators: Simulators
) -> None:
    admin = await make_account("admin")
    developer = await make_account("developer", prefix="bob")
    await sign_in(page, admin)
    await expect(page).to_have_url(f"{gateway.url}/admin")
    await shot(page, "10-admin-dashboard")

    # A connection, tested with a real signed call to the Wangdiantong simulator.
    connection = unique("wdt")
    await page.goto("/admin/connections")
    await page.fill("#f-name", connection)
    await page.select_option("#f-system", "wangdiantong")
    await page.fill("#f-base_url", simulators.wdt.url)
    for field, value in wdt_sim.DEFAULT_CREDENTIALS.items():
        await page.fill(f"fieldset[data-system=wangdiantong] #f-credential_{field}", value)
    await page.fill("#f-qps", "20")
    await page.check("#f-open")  # open to every app: the developer below chooses it as a default
    await page.click("#connection-form button[type=submit]")
    await page.click(f"[data-testid='test-{connection}']")
    await expect(page.locator("[data-testid=test-ok]")).to_be_visible()
    assert wdt_sim.DEFAULT_CREDENTIALS["appsecret"] not in await page.content()
    await shot(page, "11-connections-tested")

    # A plan whose subscriptions wait for approval.
    plan = unique("partner")
    await page.goto("/admin/plans")
    await page.fill("#f-name", plan)
    await page.fill("[id='f-rate_limits.per_minute']", "600")
    await page.fill("[id='f-quotas.per_day']", "10000")
    await page.check("input[name=requires_approval]")
    await page.click("form[action='/admin/plans'] button[type=submit]")
    await expect(page.locator("table")).to_contain_text(plan)
    await shot(page, "12-plans")

    # A developer's app subscribes under it, and waits.
    app = await apps.create_app(
        developer.principal, unique("bob-app"), default_connections={"stockouts": connection}
    )
    await plans.subscribe(developer.principal, app["id"], "stockouts", plan)
    _, key = await apps.create_app_key(developer.principal, app["id"], name="prod")
    await call_until(gateway.url, key, 403)  # not subscribed until approved

    await page.goto("/admin/subscriptions")
    await shot(page, "13-subscription-queue")
    await page.click(f"[data-testid='approve-{app['name']}-stockouts']")
    await expect(page.locator(f"[data-testid='approve-{app['name']}-stockouts']")).to_have_count(0)
    await call_until(gateway.url, key, 200)

    # Found by its prefix and revoked: the key is refused at once.
    await page.goto(f"/admin/keys?prefix={key[:10]}")
    await shot(page, "14-keys-found")
    # Revoking asks first; the admin agrees.
    asked: list[str] = []

    async def agree(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", agree)
    await page.click("#found-keys button.danger")
    await expect(page.locator("#found-keys .badge")).to_have_text("已吊销")
    assert asked == ["确定吊销此密钥？使用它的调用将立即被拒绝。"]
    answer = await call_until(gateway.url, key, 401)
    assert answer.json()["code"] == "unauthorized"

    # The audit log has every change, with who did it.
    await page.goto("/admin/audit")
    for action in ("connection.create", "plan.create", "subscription.approve", "key.revoke"):
        await expect(page.locator("td.mono", has_text=action).first).to_be_visible()
    await shot(page, "15-audit-log")

    # Every other admin page renders, and gets its screenshot.
    for entry in nav.entries("admin"):
        response = await page.goto(entry.href)
        assert response is not None and response.status == 200, entry.href
        await shot(page, f"2x-admin{entry.href.replace('/', '-')}")
    await page.goto(f"/portal/apps/{app['id']}")
    await shot(page, "30-admin-sees-app")


async def test_a_refused_form_says_why_beside_the_field_and_keeps_what_was_typed(
    page: Page, gateway: Gateway
) -> None:
    developer = await make_account("developer", prefix="carol")
    app = await apps.create_app(developer.principal, unique("carol-app"))
    await plans.subscribe(developer.principal, app["id"], "stockouts", TEST_PLAN)
    await sign_in(page, developer)
    await page.goto(f"/portal/apps/{app['id']}")

    # The browser itself holds the key's expiry to 1..3650 days (the form's min and max work).
    await page.fill("#keys #f-expires_in_days", "0")
    assert not await page.locator("#keys #f-expires_in_days").evaluate("input => input.checkValidity()")

    # Refused by the server (htmx gets a 4xx): the message appears beside the field, in Chinese.
    await page.fill("#client-f-name", "reporting")
    await page.click("#oauth button.primary")
    await expect(page.locator("#oauth .err")).to_contain_text("请至少选一个权限范围")
    await expect(page.locator("#client-f-name")).to_have_value("reporting")
    await expect(page.locator("#keys .err")).to_have_count(0)  # only the section that failed says so

    await page.select_option("#f-api", "stockouts")
    await page.click("#subscriptions form.inline button[type=submit]")
    await expect(page.locator("#subscriptions .err")).to_contain_text("该应用已订阅 stockouts")
    await shot(page, "06-refused-forms")

    # A form whose CSRF token no longer matches (signed out elsewhere, cookies cleared) says so too.
    await page.context.clear_cookies()
    await page.fill("#keys #f-expires_in_days", "")
    # The "0" typed above would be refused by the browser itself, and nothing sent.
    await expect(page.locator("#keys #f-expires_in_days")).to_have_value("")
    # Held apart: the form was sent and refused (a failure here means the browser sent nothing) ...
    async with page.expect_response(lambda answer: answer.request.method == "POST") as sent:
        await page.click("#keys form.inline button[type=submit]")
    assert (await sent.value).status == 403
    # ... and the refusal is shown, in place of the page's content.
    alert = page.locator("main [role=alert]")
    await expect(alert).to_have_count(1)  # the page's content is replaced: the old alerts are gone
    await expect(alert).to_contain_text("CSRF")
    await expect(alert.locator("a")).to_have_attribute("href", "/portal/login")
    await shot(page, "07-form-after-cookies-cleared")


async def test_a_form_sent_after_the_session_ended_leads_to_sign_in_and_back_to_its_page(
    page: Page, gateway: Gateway
) -> None:
    developer = await make_account("developer", prefix="dave")
    app = await apps.create_app(developer.principal, unique("dave-app"))
    await sign_in(page, developer)
    await page.goto(f"/portal/apps/{app['id']}")

    # The session ends on the server (it expired, or was ended elsewhere) while the page stays open:
    # the cookies are still sent, so the CSRF check passes and the form meets a signed-out server.
    cookie = next(c["value"] for c in await page.context.cookies() if c["name"] == SESSION_COOKIE)
    ended = (
        await PortalSession.update({PortalSession.expires_at: datetime.now(UTC) - timedelta(seconds=1)})
        .where(PortalSession.key_hash == hashlib.sha256(cookie.encode()).hexdigest())
        .returning(PortalSession.id)
    )
    assert ended, "the browser's session is in the database"
    await page.fill("#keys #f-name", "sent-while-signed-out")
    await page.click("#keys form.inline button[type=submit]")

    # The sign-in page, and after signing in the page the form was on (its POST address has no page).
    await expect(page).to_have_url(f"{gateway.url}/portal/login?next=/portal/apps/{app['id']}")
    await page.fill("#f-username", developer.username)
    await page.fill("#f-password", developer.password)
    await page.click("form[action='/portal/login'] button[type=submit]")
    await expect(page).to_have_url(f"{gateway.url}/portal/apps/{app['id']}")
    await expect(page.locator("#keys tbody tr")).to_have_count(0)  # nothing was done while signed out
