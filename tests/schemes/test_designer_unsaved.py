"""The scheme designer keeps edits honest: leaving with unsaved links asks first (in Chromium), and saving
a scheme whose mapping was not touched writes no new mapping version (the admin API's `base`)."""

from __future__ import annotations

from playwright.async_api import Dialog, async_playwright, expect

from gateway.schemes import service
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import Gateway
from tests.portal.conftest import make_account
from tests.schemes.conftest import Flow
from tests.schemes.test_portal import _drag, _login


async def _latest(name: str) -> int:
    return int((await service.get_mapping(name))["version"])


async def test_a_spec_unchanged_from_its_base_version_writes_no_new_version(admin_http, flow_factory):
    flow: Flow = await flow_factory(5)
    ref = (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["definition"]["mapping"]
    spec = (await admin_http.get(f"/admin/api/mappings/{ref['name']}?version={ref['version']}")).json()[
        "spec"
    ]
    latest = await _latest(ref["name"])

    same = await admin_http.post("/admin/api/mappings", json={"spec": spec, "base": ref["version"]})
    assert same.status_code == 200, same.text
    assert same.json() == {"name": ref["name"], "version": ref["version"]}
    assert await _latest(ref["name"]) == latest

    edited = {**spec, "fields": {**spec["fields"], "buyer_message": {"const": "edited"}}}
    saved = await admin_http.post("/admin/api/mappings", json={"spec": edited, "base": ref["version"]})
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == latest + 1 == await _latest(ref["name"])

    missing = await admin_http.post("/admin/api/mappings", json={"spec": spec, "base": 999})
    assert missing.status_code == 400
    assert (missing.json()["code"], missing.json()["field"]) == ("invalid_parameter", "base")
    assert await _latest(ref["name"]) == latest + 1


async def test_leaving_the_designer_with_unsaved_links_asks_and_saving_clears_it(
    gateway: Gateway, flow_factory
):
    flow: Flow = await flow_factory(5)
    account = await make_account("admin", prefix="unsaved")
    ref = (await service.get_scheme(flow.name))["definition"]["mapping"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await _login(page, gateway.url, account)
            designer = f"{gateway.url}/admin/schemes/{flow.name}"
            await page.goto(designer)
            await expect(page.locator("#designer[data-ready=true]")).to_be_visible(timeout=15000)

            # Nothing edited: saving keeps the mapping version the scheme names, and leaving asks nothing.
            await page.click("#save")
            await expect(page.locator("#designer-status")).to_contain_text("已保存：映射")
            await expect(page.locator("#mapping-version")).to_have_text(f"{ref['name']} v{ref['version']}")
            assert (await service.get_scheme(flow.name))["definition"]["mapping"] == ref
            assert await _latest(ref["name"]) == ref["version"]

            await page.fill("#source-filter", "receiver_name")
            await _drag(
                page,
                "#source-fields [data-field='receiver_name']",
                "#target-fields [data-target='buyer_nick']",
            )
            await expect(page.locator("#target-fields [data-target='buyer_nick'] .link")).to_have_text(
                "← receiver_name"
            )
            asked: list[str] = []

            async def stay(dialog: Dialog) -> None:
                asked.append(dialog.type)
                await dialog.dismiss()

            page.once("dialog", stay)
            await page.locator("a.brand").click()
            await expect(page.locator("#target-fields [data-target='buyer_nick'] .link")).to_have_text(
                "← receiver_name"
            )
            assert asked == ["beforeunload"]
            assert page.url == designer  # dismissed: still here, the link still drawn

            await page.click("#save")
            await expect(page.locator("#mapping-version")).to_have_text(
                f"{ref['name']} v{ref['version'] + 1}"
            )
            assert (await service.get_scheme(flow.name))["definition"]["mapping"]["version"] == ref[
                "version"
            ] + 1

            page.on("dialog", lambda dialog: asked.append(dialog.type))
            await page.locator("a.brand").click()
            await page.wait_for_url(f"{gateway.url}/portal**")
            assert asked == ["beforeunload"]  # saved: left without a second question
        finally:
            await browser.close()
