"""A dead letter's details on a run's page, in real Chromium: what failed (stage, codes, the vendor's
message), the source record and the mapped record, fetched from the admin API when asked for, in a dialog
that the keyboard opens and closes, in Chinese and English."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright, expect

from gateway.schemes import service
from gateway.store.scheme_tables import DeadLetter
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import Gateway
from tests.portal.conftest import make_account, sign_in
from tests.schemes import conftest as scheme_fixtures
from tests.schemes.conftest import Flow

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # git-ignored
# Simulators and a reference scheme of its own for the test (the scheme tests' fixtures).
sims_factory = scheme_fixtures.sims_factory
flow_factory = scheme_fixtures.flow_factory


async def _break_mapping(flow: Flow) -> None:
    """Two mistakes an admin would fix: finished stockouts (110) left unmapped, and one warehouse mapped to
    a code the target ERP does not have, so the target refuses those records."""
    scheme = await service.get_scheme(flow.name)
    spec = dict((await service.get_mapping(scheme["definition"]["mapping"]["name"]))["spec"])
    fields = dict(spec["fields"])
    fields["trade_status"] = {
        **fields["trade_status"],
        "map": {"55": "30", "95": "50", "105": "50", "113": "50"},
    }
    spec["fields"] = fields
    spec["tables"] = {**spec.get("tables", {}), "warehouses": {"SHJD01": "NO-SUCH-WH"}}
    # A mapping of its own: a new version of the reference mapping would be what later tests' schemes get.
    spec["name"] = f"broken-{flow.name}"
    saved = await service.save_mapping(spec, comment="broken on purpose")
    await service.put_scheme(flow.name, {**scheme["definition"], "mapping": saved})


def _shown(value: Any) -> str:
    """A JSON value as the dialog prints a field of it: `"key": value`, Chinese as is."""
    return json.dumps(value, ensure_ascii=False)


def _chinese_field(record: dict[str, Any]) -> tuple[str, str]:
    """A field of the record whose text is Chinese (the receiver's name or address, say)."""
    return next(
        (key, value)
        for key, value in record.items()
        if isinstance(value, str) and re.search(r"[\u4e00-\u9fff]", value)
    )


async def test_an_admin_sees_what_failed_in_a_dead_letter_and_closes_it_with_the_keyboard(
    gateway: Gateway, flow_factory: Callable[..., Awaitable[Flow]]
) -> None:
    flow = await flow_factory(40)
    await _break_mapping(flow)
    run = await flow.run()
    assert run["status"] == "partial", run
    letters = {row["stage"]: row for row in (await service.dead_letter_page(flow.name)).rows}
    assert {"target", "mapping"} <= set(letters), letters  # the simulator's 40 stockouts have both
    refused = await service.dead_letter(letters["target"]["id"])
    unmapped = await service.dead_letter(letters["mapping"]["id"])
    vendor_code = str(refused["error"]["answer"]["code"])
    assert "仓库不存在" in refused["error"]["message"]
    chinese_key, chinese_value = _chinese_field(refused["source_record"])
    # A letter whose source holds markup: shown as the text it is, never made into elements.
    markup = "<img src=x onerror=\"document.body.dataset.hacked='yes'\">"
    hostile = await DeadLetter.insert(
        DeadLetter(
            slot=f"{flow.scheme_id}:HOSTILE",
            scheme=flow.scheme_id,
            run=run["id"],
            record_key="HOSTILE",
            stage="target",
            source_record={"stockout_no": "HOSTILE", "remark": markup},
            mapped_record={"tid": "HOSTILE", "buyer_message": markup},
            error={"code": "target_refused", "message": markup, "answer": {"code": 100, "error": markup}},
        )
    )
    hostile_id = int(hostile[0]["id"])

    admin = await make_account("admin", prefix="letters")
    session = await sign_in(gateway.url, admin)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await _login(page, gateway.url, admin.username, admin.password)
            await page.goto(f"{gateway.url}/admin/schemes/runs/{run['id']}")
            dialog = page.get_by_test_id("letter-details")
            row = page.locator(f"#dead-body tr[data-letter='{refused['id']}']")
            opener = row.get_by_test_id("letter-open")
            await expect(opener).to_have_text("查看", timeout=15000)
            await expect(opener).to_have_accessible_name(f"查看记录 {refused['record_key']} 的死信")
            await expect(dialog).to_be_hidden()

            # Opened: the error (stage, our code, the vendor's code and message), then both records.
            await opener.click()
            await expect(dialog).to_be_visible()
            await expect(page.get_by_test_id("letter-key")).to_have_text(refused["record_key"])
            await expect(page.get_by_test_id("letter-message")).to_contain_text("仓库不存在")
            await expect(page.get_by_test_id("letter-vendor-code")).to_have_text(vendor_code)
            await expect(page.locator("#letter-stage")).to_have_text("目标")
            await expect(page.locator("#letter-code")).to_have_text("target_refused")
            source = page.get_by_test_id("letter-source")
            await expect(source).to_contain_text(
                f'"stockout_no": {_shown(refused["source_record"]["stockout_no"])}'
            )
            await expect(source).to_contain_text(f'"{chinese_key}": {_shown(chinese_value)}')
            mapped = page.get_by_test_id("letter-mapped")
            await expect(mapped).to_contain_text('"warehouse_no": "NO-SUCH-WH"')
            await expect(mapped).to_contain_text(f'"tid": {_shown(refused["mapped_record"]["tid"])}')
            await expect(page.get_by_test_id("letter-full")).to_contain_text(
                f'"code": {_shown(refused["error"]["answer"]["code"])}'
            )
            await expect(page.get_by_test_id("letter-unmapped")).to_be_hidden()
            await page.screenshot(path=str(SHOTS / "dead-letter-details.png"))
            # Modal: the keyboard is in it (on its close button), and Escape closes it, back to the row.
            await expect(page.get_by_test_id("letter-close")).to_be_focused()
            await page.keyboard.press("Escape")
            await expect(dialog).to_be_hidden()
            await expect(opener).to_be_focused()

            # Opened from the keyboard on a letter the mapping refused: there is no mapped record to show.
            other = page.locator(f"#dead-body tr[data-letter='{unmapped['id']}']").get_by_test_id(
                "letter-open"
            )
            await other.focus()
            await page.keyboard.press("Enter")
            await expect(dialog).to_be_visible()
            await expect(page.get_by_test_id("letter-key")).to_have_text(unmapped["record_key"])
            await expect(page.locator("#letter-stage")).to_have_text("映射")
            await expect(page.get_by_test_id("letter-message")).to_have_text(unmapped["error"]["message"])
            await expect(page.get_by_test_id("letter-vendor-code")).to_have_text("—")
            await expect(page.get_by_test_id("letter-unmapped")).to_have_text(
                "无：该记录在映射之前就已失败。"
            )
            await expect(page.get_by_test_id("letter-mapped")).to_be_hidden()
            await expect(page.get_by_test_id("letter-source")).to_contain_text(
                f'"stockout_no": {_shown(unmapped["source_record"]["stockout_no"])}'
            )
            await page.get_by_test_id("letter-close").click()
            await expect(dialog).to_be_hidden()

            # Markup in a record or an error is text on the page.
            await (
                page.locator(f"#dead-body tr[data-letter='{hostile_id}']")
                .get_by_test_id("letter-open")
                .click()
            )
            await expect(page.get_by_test_id("letter-message")).to_have_text(markup)
            await expect(page.get_by_test_id("letter-source")).to_contain_text(_shown(markup))
            await expect(page.get_by_test_id("letter-mapped")).to_contain_text(_shown(markup))
            assert await dialog.locator("img").count() == 0
            assert await page.evaluate("document.body.dataset.hacked") is None
            await page.get_by_test_id("letter-close").click()

            # In English for an admin who reads English.
            await session.form("/portal/locale", {"locale": "en", "next": "/portal"})
            await page.reload()
            await expect(opener).to_have_text("Details", timeout=15000)
            await expect(opener).to_have_accessible_name(
                f"Details of the dead letter of {refused['record_key']}"
            )
            await opener.click()
            await expect(page.locator("#letter-h")).to_have_text(f"Dead letter {refused['record_key']}")
            await expect(page.locator("#letter-stage")).to_have_text("target")
            await expect(page.get_by_test_id("letter-close")).to_have_text("Close")
            await expect(page.get_by_test_id("letter-message")).to_contain_text(
                "仓库不存在"
            )  # the vendor's words
            await page.get_by_test_id("letter-close").click()
            await expect(dialog).to_be_hidden()
        finally:
            await browser.close()
            await session.http.aclose()


async def _login(page: Page, url: str, username: str, password: str) -> None:
    await page.goto(f"{url}/portal/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("form[action='/portal/login'] button[type=submit]")
    await page.wait_for_load_state("networkidle")
