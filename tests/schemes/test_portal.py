"""The schemes section of the portal against a real `unigate serve` and `unigate worker`: the mapping
preview API, mapping versions, and the visual designer driven in Chromium in the admin's language (drag
and drop, preview, save, run, start and stop, per-record results)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.async_api import Dialog, Page, async_playwright, expect

from gateway.schemes import service
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import Gateway
from tests.portal.conftest import Account, make_account, sign_in
from tests.schemes.conftest import TEMPLATE_MAPPING, Flow
from tests.services import free_port, run_process


async def test_preview_maps_sample_records_and_reports_each_failure(admin_http, flow_factory):
    flow: Flow = await flow_factory(20)
    spec = yaml.safe_load(TEMPLATE_MAPPING.read_text())
    good = next(s for s in flow.sims.source_state.stockouts if s["status"] == "95")
    bad = {**good, "stockout_no": "BAD-1", "status": "5"}  # cancelled: the mapping refuses it
    answer = await admin_http.post("/admin/api/mappings/preview", json={"spec": spec, "records": [good, bad]})
    assert answer.status_code == 200, answer.text  # a preview creates nothing
    body = answer.json()
    assert body["records"][0]["tid"] == good["src_tids"].split(",")[0]
    assert body["records"][1] is None
    assert body["errors"] == [
        {"index": 1, "key": "BAD-1", "field": "trade_status", "message": body["errors"][0]["message"]}
    ]

    broken = {**spec, "fields": {**spec["fields"], "tid": {"form": "src_tids"}}}
    refused = await admin_http.post("/admin/api/mappings/preview", json={"spec": broken, "records": [good]})
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "invalid_mapping" and problem["field"] == "spec"
    assert any("fields.tid" in issue["path"] and "from" in issue["message"] for issue in problem["issues"])


async def test_mapping_versions_count_up_and_schemes_name_theirs(admin_http, flow_factory):
    flow: Flow = await flow_factory(20)
    scheme = (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()
    ref = scheme["definition"]["mapping"]
    spec = (await admin_http.get(f"/admin/api/mappings/{ref['name']}?version={ref['version']}")).json()[
        "spec"
    ]
    saved = await admin_http.post("/admin/api/mappings", json={"spec": spec, "comment": "again"})
    assert saved.status_code == 201 and saved.json()["version"] > ref["version"]
    # The scheme still names its own version until it is told otherwise.
    assert (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["definition"]["mapping"] == ref
    wrong = await admin_http.put(
        f"/admin/api/schemes/{flow.name}",
        json={
            "definition": {
                **scheme["definition"],
                "target": {**scheme["definition"]["target"], "batch_size": 80},
            }
        },
    )
    assert wrong.status_code == 400 and wrong.json()["field"] == "target.batch_size"


async def test_developers_cannot_reach_scheme_administration(gateway: Gateway):
    developer = await make_account("developer", prefix="schemes-dev")
    session = await sign_in(gateway.url, developer)
    try:
        answer = await session.call("POST", "/admin/api/mappings/preview", json={"spec": {}, "records": []})
        assert answer.status_code in (401, 403)
    finally:
        await session.http.aclose()


async def _drag(page: Page, source: str, target: str) -> None:
    """Drag with the mouse, as a person does: both ends in view, press, move in steps, release."""
    drop = page.locator(target)
    await drop.scroll_into_view_if_needed()
    await page.locator(source).scroll_into_view_if_needed()
    start, end = await page.locator(source).bounding_box(), await drop.bounding_box()
    assert start and end
    await page.mouse.move(start["x"] + 10, start["y"] + start["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(end["x"] + 20, end["y"] + end["height"] / 2, steps=8)
    await page.mouse.up()


async def _login(page: Page, url: str, account: Account) -> None:
    await page.goto(f"{url}/portal/login")
    await page.fill("input[name=username]", account.username)
    await page.fill("input[name=password]", account.password)
    await page.click("form[action='/portal/login'] button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def test_design_a_mapping_by_drag_and_drop_then_run_it_and_see_each_record(
    gateway: Gateway, flow_factory, tmp_path: Path
):
    flow: Flow = await flow_factory(40)
    account = await make_account("admin", prefix="designer")
    port = free_port()
    worker = run_process(
        [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
        env={**flow.env, "UNIGATE_SCHEME_POLL_SECONDS": "0.2"},
        log_path=tmp_path / "worker.log",
        ready_url=f"http://127.0.0.1:{port}/healthz",
    )
    with worker:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await _login(page, gateway.url, account)
                await page.goto(f"{gateway.url}/admin/schemes")
                row = page.locator(
                    "[data-testid=schemes] tr", has=page.locator(f"a[href='/admin/schemes/{flow.name}']")
                )
                await expect(row.locator("[data-status]")).to_have_attribute("data-status", "idle")
                await expect(row.locator("[data-status]")).to_have_text("空闲")
                await page.click(f"a[href='/admin/schemes/{flow.name}']")
                await expect(page.locator("#designer[data-ready=true]")).to_be_visible(timeout=15000)
                # The link editor shows only for a link picked (its CSS once showed it while hidden).
                await expect(page.locator("#link-editor")).to_be_hidden()

                links = {
                    "receiver_name": "buyer_nick",
                    "logistics_no": "buyer_message",
                    "details_list.goods_name": "order_list.remark",
                }
                for source, target in links.items():
                    await page.fill("#source-filter", source)
                    await _drag(
                        page,
                        f"#source-fields [data-field='{source}']",
                        f"#target-fields [data-target='{target}']",
                    )
                    await expect(page.locator(f"#target-fields [data-target='{target}'] .link")).to_have_text(
                        f"← {source}"
                    )
                # A function on the last link made: the waybill number in lower case.
                await page.locator("#target-fields [data-target='buyer_message']").click()
                await expect(page.locator("#link-editor")).to_be_visible()
                await page.select_option("#link-fn", "lower")
                await page.click("#link-apply")

                # The page speaks the admin's language: Chinese, the default.
                await page.click("#load-samples")
                designer_status = page.locator("#designer-status")
                await expect(designer_status).to_have_text("已加载 5 条样例记录", timeout=20000)
                await page.click("#preview")
                await expect(page.locator("#designer-status")).to_contain_text("预览：5 条映射成功")
                preview = await page.locator("#preview-out").text_content() or ""
                assert '"buyer_nick"' in preview

                await page.click("#save")
                await expect(page.locator("#designer-status")).to_contain_text("已保存：映射")
                await page.click("[data-testid=run-now]")
                status = page.locator("#runs-body tr").first.locator("[data-testid=run-status]")
                await expect(status).to_have_attribute("data-status", "succeeded", timeout=60000)
                await expect(status).to_have_text("成功")

                # Start turns the schedule on (its first run is a schedule's length away), Stop turns it off.
                scheme_status = page.locator("#scheme-status")
                await page.click("[data-testid=start]")
                await expect(page.locator("#action-result")).to_have_text("计划已启用")
                await expect(scheme_status).to_have_attribute("data-status", "scheduled")
                await expect(scheme_status).to_have_text("已启用计划")
                started = await service.get_scheme(flow.name)
                assert started["enabled"] is True and started["next_run_at"] > time.time()
                # Stop asks first: dismissed, the schedule stays on; accepted, it goes off.
                asked: list[str] = []

                def answer(accept: bool) -> Callable[[Dialog], Awaitable[None]]:
                    async def handle(dialog: Dialog) -> None:
                        asked.append(dialog.message)
                        await (dialog.accept() if accept else dialog.dismiss())

                    return handle

                page.once("dialog", answer(False))
                await page.click("[data-testid=stop]")
                assert asked and asked[0].startswith("停止本方案？"), asked
                assert (await service.get_scheme(flow.name))["enabled"] is True
                await expect(page.locator("#action-result")).to_have_text("计划已启用")
                page.once("dialog", answer(True))
                await page.click("[data-testid=stop]")
                await expect(page.locator("#action-result")).to_have_text("计划已停用")
                await expect(scheme_status).to_have_attribute("data-status", "idle")
                stopped = await service.get_scheme(flow.name)
                assert (stopped["enabled"], stopped["next_run_at"]) == (False, None)

                await page.locator("#runs-body tr").first.locator("a").click()
                await expect(page.locator("#run")).to_have_attribute("data-status", "succeeded")
                await expect(page.locator("#run-progress")).to_contain_text("成功")
                rows = page.locator("#records-body tr")
                await expect(rows.first).to_be_visible()
                expected = flow.expected_tids()
                assert await rows.count() == len(expected)
                cells = page.locator("[data-testid=record-status]")
                statuses = await cells.evaluate_all("cells => cells.map((c) => c.dataset.status)")
                assert set(statuses) == {"success"}
                assert set(await cells.all_text_contents()) == {"成功"}
                await page.check("#failed-only")
                await expect(rows).to_have_count(0)
            finally:
                await browser.close()

    # The target holds what the designed mapping says, for every record.
    pushed = flow.sims.target.state.pushed
    assert set(pushed) == expected
    for stockout in flow.sims.source_state.stockouts:
        if stockout["status"] == "5":
            continue
        trade = next(
            p.trade
            for tid, p in pushed.items()
            if tid in stockout["src_tids"].split(",") or tid == stockout["src_order_no"]
        )
        assert trade["buyer_nick"] == stockout["receiver_name"]
        assert trade["buyer_message"] == stockout["logistics_no"].lower()
        assert trade["order_list"][0]["remark"] == stockout["details_list"][0]["goods_name"]


def _bad(definition: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The definition with the value at a dotted path replaced."""
    copy = json.loads(json.dumps(definition))
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = node[part]
    node[last] = value
    return copy


async def test_the_admin_api_names_the_field_of_each_bad_input(admin_http, flow_factory):
    flow: Flow = await flow_factory(5)
    definition = (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["definition"]
    run = (await admin_http.post(f"/admin/api/schemes/{flow.name}/run")).json()["run"]
    # Pressed again while it waits for a worker: the same run, not a second one queued behind it.
    assert (await admin_http.post(f"/admin/api/schemes/{flow.name}/run")).json()["run"] == run
    full = (await admin_http.post(f"/admin/api/schemes/{flow.name}/run", json={"full": True})).json()["run"]
    assert full != run
    scheme = f"/admin/api/schemes/{flow.name}"
    cases = [
        ("PUT", scheme, _bad(definition, "mapping.version", 999), "mapping.version"),
        ("PUT", scheme, _bad(definition, "mapping.name", "no-such"), "mapping.name"),
        ("PUT", scheme, _bad(definition, "retry.attempts", 10**6), "retry.attempts"),
        ("PUT", scheme, _bad(definition, "retry.max_backoff_seconds", -1), "retry.max_backoff_seconds"),
        (
            "PUT",
            scheme,
            _bad(definition, "source.incremental.initial_days", -3),
            "source.incremental.initial_days",
        ),
        ("PUT", "/admin/api/schemes/%20padded%20", definition, "name"),
        ("GET", f"/admin/api/runs/{run}/records?limit=-5", None, "limit"),
        ("GET", f"/admin/api/runs/{run}/records?limit=5&offset=-5", None, "offset"),
        ("GET", f"{scheme}/dead-letters?status=bogus", None, "status"),
        ("GET", f"{scheme}/dead-letters?limit=0", None, "limit"),
    ]
    for method, path, definition_sent, field in cases:
        body = {"definition": definition_sent} if definition_sent is not None else None
        answer = await admin_http.request(method, path, json=body)
        assert answer.status_code == 400, (path, field, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert (answer.json()["code"], answer.json()["field"]) == ("invalid_parameter", field), path
    # Nothing bad was saved.
    assert (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["definition"] == definition
    assert (await admin_http.get("/admin/api/schemes/%20padded%20")).status_code == 404


async def test_a_deleted_scheme_takes_its_history_along_and_a_new_one_starts_afresh(admin_http, flow_factory):
    flow: Flow = await flow_factory(20)
    definition = (await admin_http.get(f"/admin/api/schemes/{flow.name}")).json()["definition"]
    doomed = await admin_http.put("/admin/api/schemes/doomed", json={"definition": definition})
    flow.scheme_id, flow.name = doomed.json()["id"], "doomed"
    first = await flow.run()
    assert first["succeeded"] == len(flow.expected_tids())

    deleted = await admin_http.delete("/admin/api/schemes/doomed")
    assert deleted.status_code == 204, deleted.text
    assert (await admin_http.get("/admin/api/schemes/doomed")).status_code == 404
    assert (await admin_http.get(f"/admin/api/runs/{first['id']}")).status_code == 404
    # The scheme saved next (on SQLite it gets the deleted one's id) knows nothing of the old one's
    # deliveries: its first run reads the whole initial window and pushes every record to its target.
    saved = await admin_http.put("/admin/api/schemes/after-delete", json={"definition": definition})
    assert saved.status_code == 200, saved.text
    flow.scheme_id, flow.name = saved.json()["id"], "after-delete"
    again = await flow.run()
    assert (again["status"], again["succeeded"], again["skipped"]) == (
        "succeeded",
        len(flow.expected_tids()),
        0,
    )
    assert all(count == 2 for count in flow.sims.target.pushes.values())
    assert (await admin_http.delete("/admin/api/schemes/after-delete")).status_code == 204
    assert (await admin_http.delete("/admin/api/schemes/after-delete")).status_code == 404

    # Each change is in the audit log, by whom and with what it was, like every other admin change.
    events = (await admin_http.get("/admin/api/audit", params={"limit": 200})).json()
    mine = [(e["action"], e["target"]) for e in events if e["target"] in ("doomed", "after-delete")]
    assert mine[::-1] == [
        ("scheme.create", "doomed"),
        ("scheme.delete", "doomed"),
        ("scheme.create", "after-delete"),
        ("scheme.delete", "after-delete"),
    ], mine
    deleted_event = next(e for e in events if e["action"] == "scheme.delete" and e["target"] == "doomed")
    assert deleted_event["before"]["definition"]["source"] == definition["source"]
    assert deleted_event["actor"].startswith("schemes-admin")


@pytest.mark.parametrize("name", ["catalogue", "sample"])
def test_a_scheme_cannot_take_the_name_of_a_fixed_admin_route(name):
    """/admin/api/schemes/catalogue is a route of its own: a scheme so named could never be read or saved."""
    from gateway.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as refused:
        service.check_name(name)
    assert refused.value.field == "name" and "admin API" in refused.value.detail
    service.check_name(f"{name}-daily")  # only the route's own name is taken
