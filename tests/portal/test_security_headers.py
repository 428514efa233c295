"""Security headers on the portal, admin pages, their APIs and /docs (CSP, no framing, nosniff,
Referrer-Policy; HSTS only over https), and every page working under its CSP in a real Chromium: no
console error, no CSP violation, across the main developer and admin pages, the scheme designer, a run
page, the API reference and /docs."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Dialog, Page, expect

from gateway.demo import install_reference_scheme
from gateway.errors import UnigateError
from gateway.schemes import service
from gateway.settings import Settings
from gateway.store.crypto import Vault
from gateway.store.scheme_tables import DeadLetter, RecordResult, SchemeRun
from policies.ipfilter import Proxies
from portal.security_headers import SecurityHeaders
from portal.services import apps
from tests.conftest import Gateway
from tests.portal.conftest import Account, Session, make_account, unique
from tests.portal.test_browser import sign_in as browser_sign_in
from tests.schemes import conftest as scheme_fixtures
from tests.schemes.conftest import Sims

BROWSER = {"accept": "text/html,application/xhtml+xml"}
sims_factory = scheme_fixtures.sims_factory  # simulators of its own for the scheme


def csp(answer: httpx.Response) -> dict[str, str]:
    """The CSP's directives, name -> sources."""
    policy = answer.headers["content-security-policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


def assert_page_headers(answer: httpx.Response) -> None:
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    directives = csp(answer)
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"
    assert directives["object-src"] == "'none'"
    # Scripts are this origin's files only: no inline code, no eval.
    assert "unsafe" not in directives.get("script-src", directives["default-src"])
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in answer.headers  # plain http


_SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
_STYLE_ATTR = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)


def assert_no_inline_code(html: str) -> None:
    """What the CSP would block: inline scripts (a JSON data block is not run), handlers, style attributes."""
    for attributes in _SCRIPT.findall(html):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    assert not _HANDLER.search(html), _HANDLER.search(html)
    assert not _STYLE_ATTR.search(html), _STYLE_ATTR.search(html)


async def test_pages_say_what_may_load_and_that_none_may_be_framed(
    admin_session: Session, dev_session: Session, gateway: Gateway
) -> None:
    admin_pages = [
        "/admin",
        "/admin/connections",
        "/admin/apis",
        "/admin/plans",
        "/admin/subscriptions",
        "/admin/consumers",
        "/admin/keys",
        "/admin/accounts",
        "/admin/audit",
        "/admin/config",
        "/admin/schemes",
    ]
    for path in admin_pages:
        answer = await admin_session.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert_page_headers(answer)
        assert_no_inline_code(answer.text)
    for path in ["/portal", "/portal/reference", "/portal/account"]:
        answer = await dev_session.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert_page_headers(answer)
        assert_no_inline_code(answer.text)
    # Error pages too: one a handler draws (a developer on an admin page), and one of an address no route
    # takes (answered before any router's middleware).
    for path in ["/admin/keys", "/portal/apps/abc", "/admin/nope"]:
        answer = await dev_session.http.get(path, headers=BROWSER)
        assert answer.status_code in (403, 404), (path, answer.status_code)
        assert_page_headers(answer)
    async with httpx.AsyncClient(base_url=gateway.url) as anonymous:
        answer = await anonymous.get("/portal/login")
        assert_page_headers(answer)
        assert_no_inline_code(answer.text)


async def test_docs_allow_swagger_ui_and_no_inline_script(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answer = await http.get("/docs")
        assert answer.status_code == 200
        assert_page_headers(answer)
        assert "unsafe" not in answer.headers["content-security-policy"]  # Swagger UI needs no inline code
        assert "<script>" not in answer.text and "<script type='text/javascript'>" not in answer.text
        for attributes in _SCRIPT.findall(answer.text):
            assert "src=" in attributes
        assert (await http.get("/docs/openapi.json")).status_code == 200
        # Litestar's OAuth2 redirect page keeps its inline script, allowed by its hash alone.
        redirect = await http.get("/docs/oauth2-redirect.html")
        assert redirect.status_code == 200
        assert "'sha256-" in csp(redirect)["script-src"]


async def test_apis_and_assets_are_not_sniffed_nor_framed(
    admin_api: httpx.AsyncClient, dev_session: Session, gateway: Gateway, client: httpx.AsyncClient
) -> None:
    answers = [
        await admin_api.get("/consumers"),
        await admin_api.get(f"/consumers/{2**40}"),  # a problem+json error
        await dev_session.call("GET", "/portal/api/apps"),
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answers += [await http.get("/static/portal/portal.js"), await http.get("/docs/openapi.json")]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert csp(answer)["default-src"] == "'none'" and csp(answer)["frame-ancestors"] == "'none'"
        assert answer.headers["referrer-policy"] == "same-origin"
    # The unified API is not the portal's: its answers carry none of this (nor pay for it).
    v1 = await client.get("/v1/stockouts", params={"limit": 1})
    assert "content-security-policy" not in v1.headers and "x-frame-options" not in v1.headers


async def test_a_forwarded_https_is_believed_only_from_a_trusted_proxy(gateway: Gateway) -> None:
    # The test gateway trusts no proxy: the header of whoever calls is not believed.
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answer = await http.get("/portal/login", headers={"x-forwarded-proto": "https"})
    assert "strict-transport-security" not in answer.headers

    async def start_headers(headers: SecurityHeaders, scope: dict[str, Any]) -> dict[bytes, bytes]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        await headers.wrap(scope, send)(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        return dict(sent[0]["headers"])

    forwarded = {
        "type": "http",
        "scheme": "http",
        "path": "/portal",
        "headers": [(b"x-forwarded-proto", b"https")],
    }
    trusted = SecurityHeaders(Proxies(["10.0.0.0/8"]))
    hsts = b"strict-transport-security"
    assert hsts in await start_headers(trusted, {**forwarded, "client": ("10.1.2.3", 5000)})
    assert hsts not in await start_headers(trusted, {**forwarded, "client": ("192.0.2.9", 5000)})
    assert hsts in await start_headers(
        trusted, {**forwarded, "scheme": "https", "headers": [], "client": None}
    )


# -- In Chromium ------------------------------------------------------------------------------------


class Watched:
    """A tab whose console errors, uncaught exceptions and CSP violations are kept, with the page seen."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: uncaught {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.errors.append(f"{self.page.url}: {message.text}")

    async def visit(self, path: str, ready: str) -> None:
        answer = await self.page.goto(path)
        assert answer is not None and answer.status == 200, path
        await expect(self.page.locator(ready).first).to_be_visible(timeout=20_000)
        await self.page.wait_for_load_state("networkidle")


@pytest.fixture
async def tab(browser: Browser, gateway: Gateway) -> AsyncIterator[Callable[[], Awaitable[Watched]]]:
    contexts: list[Any] = []

    async def open_tab() -> Watched:
        context = await browser.new_context(base_url=gateway.url, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return Watched(await context.new_page())

    yield open_tab
    for context in contexts:
        await context.close()


@pytest.fixture
async def scheme_with_a_run(store: tuple[Settings, dict[str, str]], sims_factory: Callable[..., Sims]) -> Any:
    """The reference scheme under a name of its own, with a finished run: a record done, one failed."""
    settings, _ = store
    sims = sims_factory(5)
    names = {end: unique(f"csp-{end}") for end in ("source", "target", "tracking")}
    urls = {"source": sims.source_url, "target": sims.target_url, "tracking": sims.kd100_url}
    await install_reference_scheme(Vault(settings.secret_key), urls, names)
    definition = (await service.get_scheme(service.REFERENCE_SCHEME))["definition"]
    await service.delete_scheme(service.REFERENCE_SCHEME)
    name = unique("csp")
    ident = await service.put_scheme(name, definition)
    now = datetime.now(UTC)
    run = int(
        (
            await SchemeRun.insert(
                SchemeRun(
                    scheme=ident,
                    trigger="manual",
                    status="partial",
                    pulled=2,
                    total=2,
                    succeeded=1,
                    failed=1,
                    started_at=now,
                    finished_at=now,
                )
            )
        )[0]["id"]
    )
    await RecordResult.insert(
        RecordResult(slot=f"{run}:A1", run=run, scheme=ident, record_key="A1", status="success", attempts=1),
        RecordResult(
            slot=f"{run}:A2",
            run=run,
            scheme=ident,
            record_key="A2",
            status="failed",
            attempts=1,
            error="refused by the target",
        ),
    )
    await DeadLetter.insert(
        DeadLetter(
            slot=f"{ident}:A2",
            scheme=ident,
            run=run,
            record_key="A2",
            stage="target",
            source_record={"id": "A2"},
            error={"message": "refused by the target"},
        )
    )
    yield name, run
    with contextlib.suppress(UnigateError):
        await service.delete_scheme(name)


async def test_every_main_page_works_under_its_csp_in_chromium(
    tab: Callable[[], Awaitable[Watched]], gateway: Gateway, scheme_with_a_run: tuple[str, int]
) -> None:
    scheme, run = scheme_with_a_run
    admin, developer = await make_account("admin"), await make_account("developer", prefix="dev")
    app = await apps.create_app(developer.principal, unique("csp-app"))
    _, key = await apps.create_app_key(developer.principal, app["id"], name="csp")
    watched: list[Watched] = []

    async def signed_in(account: Account) -> Watched:
        opened = await tab()
        await browser_sign_in(opened.page, account)
        watched.append(opened)
        return opened

    dev = await signed_in(developer)
    await dev.visit("/portal", "h1")
    await dev.visit(f"/portal/apps/{app['id']}", "h1")
    await dev.visit("/portal/account", "h1")
    await dev.visit("/portal/reference", ".opblock")  # Swagger UI drew the operations

    ops = await signed_in(admin)
    for path in [
        "/admin/apis",
        "/admin/plans",
        "/admin/subscriptions",
        "/admin/consumers",
        "/admin/accounts",
    ]:
        await ops.visit(path, "h1")
    await ops.visit("/admin/audit", "h1")
    await ops.visit("/admin/config", "h1")
    await ops.visit("/admin/schemes", "h1")
    await ops.visit(f"/admin/schemes/{scheme}", "#source-fields >> *")  # the designer drew the fields
    await ops.visit(f"/admin/schemes/runs/{run}", "#records-body tr")  # the run page listed its records
    await expect(ops.page.locator("#dead-body tr").first).to_contain_text("A2")

    # The dashboard's day range still sends its form when changed (no inline onchange any more).
    await ops.visit("/admin", "canvas")
    await ops.page.select_option("#days", "30")
    await expect(ops.page).to_have_url(re.compile(r"/admin\?days=30$"))
    # The connection form still shows only the chosen system's credentials (its script moved to a file).
    await ops.visit("/admin/connections", "#f-system")
    await ops.page.select_option("#f-system", "kuaidi100")
    await expect(ops.page.locator("fieldset.credentials[data-system=wangdiantong]")).to_be_hidden()
    await expect(ops.page.locator("fieldset.credentials[data-system=kuaidi100]")).to_be_visible()
    # A form with data-confirm still asks first, and sends nothing when the admin says no.
    await ops.visit(f"/admin/keys?prefix={key[:11]}", "form[data-confirm]")
    asked: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    ops.page.once("dialog", refuse)
    before = await ops.page.locator("form[data-confirm]").count()
    question = await ops.page.locator("form[data-confirm]").first.get_attribute("data-confirm")
    await ops.page.locator("form[data-confirm] button[type=submit]").first.click()
    await expect(ops.page).to_have_url(re.compile(r"/admin/keys\?prefix="))
    assert question and asked == [question]
    assert await ops.page.locator("form[data-confirm]").count() == before

    docs = await tab()
    watched.append(docs)
    await docs.visit("/docs", ".opblock")  # Swagger UI at /docs drew the operations from openapi.json
    # Try-it on /healthz: the request, the highlighted answer and its headers drawn under the CSP.
    health = docs.page.locator(
        ".opblock-get", has=docs.page.locator(".opblock-summary-path[data-path='/healthz']")
    )
    await health.locator(".opblock-summary").click()
    await health.locator("button.try-out__btn").click()
    await health.locator("button.execute").click()
    status = health.locator(".live-responses-table tbody td.response-col_status").first
    await expect(status).to_have_text("200", timeout=20_000)
    await expect(health.locator(".live-responses-table .highlight-code").first).to_contain_text("ok")

    errors = [error for opened in watched for error in opened.errors]
    assert not errors, "\n".join(errors)
