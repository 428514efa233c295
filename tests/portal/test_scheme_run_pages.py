"""The scheme pages of the portal against a real `unigate serve` (and `unigate worker`): a long run history
and a large run page a page at a time, every run and record reachable; and a run queued while no worker
runs saying so, in Chinese and English, until a worker picks it up."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Dialog, Page, async_playwright, expect

from gateway.demo import REFERENCE_ENDS, install_reference_scheme
from gateway.errors import UnigateError
from gateway.schemes import presence, service
from gateway.settings import Settings
from gateway.store.crypto import Vault
from gateway.store.scheme_tables import DeadLetter, RecordResult, SchemeRun
from gateway.store.worker_tables import SchemeWorker
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import SECRET_KEY, Gateway, bound_store, gateway_env, migrate, unigate
from tests.portal.conftest import Account, Session, make_account, sign_in, unique
from tests.schemes import conftest as scheme_fixtures
from tests.schemes.conftest import FINAL, Sims, until
from tests.services import free_port, run_process

RUNS = 500
RECORDS = 2000
_RUN_ROW = re.compile(r'<tr data-run="(\d+)">')
_OLDER = re.compile(r'data-testid="runs-older" href="([^"]+)"')
_NEWER = re.compile(r'data-testid="runs-newer" href="([^"]+)"')
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"  # git-ignored
NOTICE_ZH = "正在等待工作进程"
NOTICE_EN = "Waiting for a worker"
# Simulators of its own for each test (the scheme tests' fixture).
sims_factory = scheme_fixtures.sims_factory


@dataclass
class Flow:
    """The reference scheme under a name of its own, on connections to its own simulators."""

    name: str
    scheme_id: int
    env: dict[str, str]


@pytest.fixture
async def flow(
    store: tuple[Settings, dict[str, str]], sims_factory: Callable[..., Sims]
) -> AsyncIterator[Flow]:
    settings, env = store
    sims = sims_factory(20)
    names = {end: unique(f"pages-{end}") for end in ("source", "target", "tracking")}
    urls = {"source": sims.source_url, "target": sims.target_url, "tracking": sims.kd100_url}
    await install_reference_scheme(Vault(settings.secret_key), urls, names)
    definition = (await service.get_scheme(service.REFERENCE_SCHEME))["definition"]
    await service.delete_scheme(service.REFERENCE_SCHEME)  # only a source for the copy here
    name = unique("pages")
    ident = await service.put_scheme(name, definition)
    yield Flow(name, ident, env)
    # Nothing of it is left for later tests' workers to pick up, nor a month of history in their lists.
    await service.stop(name)
    with contextlib.suppress(UnigateError):
        await service.delete_scheme(name)


async def _history(flow: Flow) -> tuple[list[int], int]:
    """A month of a scheme's history: RUNS finished runs, the newest of them with RECORDS records; returns
    the run ids, oldest first, and the big run's id."""
    start = datetime.now(UTC) - timedelta(days=30)
    runs = [
        SchemeRun(
            scheme=flow.scheme_id,
            trigger="schedule",
            status="succeeded" if n % 7 else "partial",
            pulled=4,
            total=4,
            succeeded=4 if n % 7 else 3,
            failed=0 if n % 7 else 1,
            started_at=start + timedelta(minutes=n),
            finished_at=start + timedelta(minutes=n, seconds=2),
        )
        for n in range(RUNS)
    ]
    ids: list[int] = []
    for i in range(0, RUNS, 100):
        ids.extend(int(row["id"]) for row in await SchemeRun.insert(*runs[i : i + 100]))
    big = ids[-1]
    await SchemeRun.update({SchemeRun.pulled: RECORDS, SchemeRun.total: RECORDS}).where(SchemeRun.id == big)
    records = [
        RecordResult(
            slot=f"{big}:ST{n:05d}",
            run=big,
            scheme=flow.scheme_id,
            record_key=f"ST{n:05d}",
            status="failed" if n % 50 == 0 else "success",
            attempts=1,
            answer={"code": 0},
            error="refused by the target" if n % 50 == 0 else "",
        )
        for n in range(RECORDS)
    ]
    for i in range(0, RECORDS, 500):
        await RecordResult.insert(*records[i : i + 500])
    return sorted(ids), big


async def _all_pages(session: Session, first: str, link: re.Pattern[str]) -> list[list[int]]:
    """The run ids of each page, following one kind of link from `first` until it is gone."""
    pages: list[list[int]] = []
    path: str | None = first
    while path is not None:
        answer = await session.get(path)
        assert answer.status_code == 200, answer.text
        pages.append([int(n) for n in _RUN_ROW.findall(answer.text)])
        found = link.search(answer.text)
        path = found.group(1).replace("&amp;", "&") if found else None
        assert len(pages) <= RUNS, "the links go round in circles"
    return pages


async def test_the_run_history_pages_newest_first_and_every_run_is_reachable(
    gateway: Gateway, flow: Flow
) -> None:
    ids, _ = await _history(flow)
    admin = await make_account("admin", prefix="pages")
    session = await sign_in(gateway.url, admin)
    try:
        # The scheme's page shows the newest runs; "Older" leads on, page after page, to the first run.
        pages = await _all_pages(session, f"/admin/schemes/{flow.name}", _OLDER)
        assert pages[0] == ids[::-1][:20]
        assert all(len(page) == 20 for page in pages)
        assert len(pages) == RUNS // 20
        shown = [run for page in pages for run in page]
        assert shown == ids[::-1]  # each once, newest first

        # And "Newer" from the last page leads back up to the newest.
        last = f"/admin/schemes/{flow.name}?before={pages[-2][-1]}"
        back = await _all_pages(session, last, _NEWER)
        assert [run for page in back[::-1] for run in page] == ids[::-1]
        assert back[-1] == pages[0]

        # The part htmx polls and swaps is the same page, and names the page it is.
        fragment = await session.get(f"/admin/schemes/{flow.name}/run-history?before={pages[3][-1]}")
        assert fragment.status_code == 200
        assert [int(n) for n in _RUN_ROW.findall(fragment.text)] == pages[4]
        assert f'hx-get="/admin/schemes/{flow.name}/run-history?before={pages[3][-1]}"' in fragment.text
        assert "<html" not in fragment.text

        # A new run appears on the first page; an older page stays as it was.
        newest = await service.run_now(flow.name)
        first = await session.get(f"/admin/schemes/{flow.name}")
        assert [int(n) for n in _RUN_ROW.findall(first.text)][:2] == [newest, ids[-1]]
        third = await session.get(f"/admin/schemes/{flow.name}?before={pages[1][-1]}")
        assert [int(n) for n in _RUN_ROW.findall(third.text)] == pages[2]

        # The admin API pages the same way.
        api = "/admin/api/schemes/" + flow.name + "/runs"
        older = (await session.call("GET", api, params={"before": pages[0][-1], "limit": 20})).json()
        assert [run["id"] for run in older] == pages[1]
        newer = (await session.call("GET", api, params={"after": pages[2][0], "limit": 20})).json()
        assert [run["id"] for run in newer] == pages[1]
        both = await session.call("GET", api, params={"after": 1, "before": 2})
        assert both.status_code == 400 and both.json()["field"] == "after"

        # Its Link header names the pages either side: "next" on to the first run, "prev" back up.
        link: str | None = f"{api}?limit=100"
        walked: list[list[int]] = []
        while link is not None:
            answer = await session.call("GET", link)
            walked.append([run["id"] for run in answer.json()])
            assert ("prev" in answer.links) == (len(walked) > 1)
            link = answer.links.get("next", {}).get("url")
            assert len(walked) <= RUNS, "the links go round in circles"
        assert [run for page in walked for run in page] == [newest, *ids[::-1]]
        back = await session.call("GET", answer.links["prev"]["url"])
        assert [run["id"] for run in back.json()] == walked[-2]
    finally:
        await session.http.aclose()


async def _login(page: Page, url: str, account: Account) -> None:
    await page.goto(f"{url}/portal/login")
    await page.fill("input[name=username]", account.username)
    await page.fill("input[name=password]", account.password)
    await page.click("form[action='/portal/login'] button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def test_a_run_of_two_thousand_records_pages_and_every_record_is_reachable(
    gateway: Gateway, flow: Flow
) -> None:
    ids, big = await _history(flow)
    newest = ids[::-1]
    await DeadLetter.insert(
        *(
            DeadLetter(
                slot=f"{flow.scheme_id}:D{n:03d}",
                scheme=flow.scheme_id,
                run=big,
                record_key=f"D{n:03d}",
                stage="target",
                error={"message": "refused by the target"},
            )
            for n in range(120)
        )
    )
    admin = await make_account("admin", prefix="records")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await _login(page, gateway.url, admin)
            await page.goto(f"{gateway.url}/admin/schemes/{flow.name}")
            await expect(page.locator("#designer[data-ready=true]")).to_be_visible(timeout=15000)
            # The run history pages in place (htmx), the address following it; the designer stays as it was.
            history = page.locator("#runs-body tr")
            await expect(history.first).to_have_attribute("data-run", str(newest[0]))
            await expect(page.get_by_test_id("runs-newer")).to_have_count(0)
            await page.get_by_test_id("runs-older").click()
            await expect(history.first).to_have_attribute("data-run", str(newest[20]), timeout=15000)
            await expect(history).to_have_count(20)
            await expect(page).to_have_url(re.compile(rf"/admin/schemes/{flow.name}\?before={newest[19]}$"))
            await page.get_by_test_id("runs-older").click()
            await expect(history.first).to_have_attribute("data-run", str(newest[40]), timeout=15000)
            await expect(page.get_by_test_id("runs-newer")).to_have_text("较新")
            await page.get_by_test_id("runs-newer").click()
            await expect(history.first).to_have_attribute("data-run", str(newest[20]), timeout=15000)
            await expect(page.locator("#designer")).to_have_attribute("data-ready", "true")
            await page.get_by_test_id("runs-newer").click()
            await expect(history.first).to_have_attribute("data-run", str(newest[0]), timeout=15000)

            # From there to its newest run, the one with 2,000 records.
            await page.locator(f"#runs-body a[href='/admin/schemes/runs/{big}']").click()
            await expect(page.locator("#run")).to_have_attribute("data-status", "succeeded")
            rows = page.locator("#records-body tr")
            seen: list[str] = []
            for number in range(RECORDS // 100):
                await expect(rows).to_have_count(100, timeout=15000)
                keys = await rows.evaluate_all("rows => rows.map((row) => row.dataset.key)")
                assert keys[0] == f"ST{number * 100:05d}", (number, keys[0])
                seen.extend(keys)
                if number == 0:
                    await expect(page.get_by_test_id("records-previous")).to_have_count(0)
                next_link = page.get_by_test_id("records-next")
                if number < RECORDS // 100 - 1:
                    await expect(next_link).to_have_text("下一页")
                    await next_link.click()
                else:
                    await expect(next_link).to_have_count(0)
            assert seen == [f"ST{n:05d}" for n in range(RECORDS)]
            await page.screenshot(path=str(SHOTS / "run-records-last-page.png"), full_page=True)

            # Back one page, and the failed ones alone (40 of them) on one page.
            await page.get_by_test_id("records-previous").click()
            await expect(rows.first).to_have_attribute("data-key", "ST01800")
            await page.check("#failed-only")
            await expect(rows).to_have_count(RECORDS // 50)
            await expect(page.get_by_test_id("records-next")).to_have_count(0)
            statuses = await page.locator("[data-testid=record-status]").evaluate_all(
                "cells => cells.map((c) => c.dataset.status)"
            )
            assert set(statuses) == {"failed"}

            # The scheme's dead letters, 50 a page, oldest first, every one reachable.
            letters = page.locator("#dead-body tr")
            keys = []
            for count in (50, 50, 20):
                await expect(letters).to_have_count(count, timeout=15000)
                keys.extend(await letters.evaluate_all("rows => rows.map((row) => row.cells[1].textContent)"))
                if count == 50:
                    await page.get_by_test_id("letters-next").click()
            assert keys == [f"D{n:03d}" for n in range(120)]
            await expect(page.get_by_test_id("letters-next")).to_have_count(0)
            await page.get_by_test_id("letters-previous").click()
            await expect(letters.first).to_contain_text("D050", timeout=15000)

            # A replay asks first, saying how many letters "all" is: dismissed, nothing is queued; the
            # one accepted after it is the only replay run.
            said: list[str] = []
            answers: list[bool] = []  # what to answer the next dialogs; a dialog beyond them is dismissed

            async def answer(dialog: Dialog) -> None:
                said.append(dialog.message)
                await (dialog.accept() if answers and answers.pop(0) else dialog.dismiss())

            page.on("dialog", answer)
            runs_before = await SchemeRun.count().where(SchemeRun.scheme == flow.scheme_id)
            await page.get_by_test_id("replay-all").click()
            await page.get_by_test_id("replay-selected").click()  # none selected: not even asked
            await expect(page.locator("#replay-result")).to_have_text("请先选择要重放的死信。")
            answers.append(True)
            await letters.first.locator("[data-replay]").click()
            await expect(page.locator("#replay-result")).to_contain_text("重放已排队", timeout=15000)
            assert said == ["重放本方案全部 120 条未处理死信？", "重放记录 D050 的死信？"], said
            assert await SchemeRun.count().where(SchemeRun.scheme == flow.scheme_id) == runs_before + 1

            # With no open letter left, the table says so and there is nothing to replay.
            await DeadLetter.update({DeadLetter.status: "resolved"}).where(
                DeadLetter.scheme == flow.scheme_id
            )
            await page.goto(f"{gateway.url}/admin/schemes/runs/{big}")
            await expect(page.get_by_test_id("dead-empty")).to_have_text("没有未处理的死信。", timeout=15000)
            await expect(page.get_by_test_id("replay-all")).to_be_disabled()
        finally:
            await browser.close()


async def _no_worker_alive() -> None:
    """Workers of earlier tests may have been killed: their rows stay until their lease passes; the notice
    is about a node with none, so none is left claiming to be alive."""
    await SchemeWorker.update({SchemeWorker.stopped: True}).where(SchemeWorker.stopped == False)  # noqa: E712


async def test_a_run_queued_with_no_worker_says_so_until_a_worker_picks_it_up(
    gateway: Gateway, flow: Flow, tmp_path: Path
) -> None:
    await _no_worker_alive()
    account = await make_account("admin", prefix="waiting")
    session = await sign_in(gateway.url, account)
    port = free_port()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await _login(page, gateway.url, account)
                await page.goto(f"{gateway.url}/admin/schemes/{flow.name}")
                await expect(page.locator("#designer[data-ready=true]")).to_be_visible(timeout=15000)
                notice = page.get_by_test_id("worker-notice")
                await expect(notice).to_be_hidden()  # nothing waits yet

                # "Run now" on a node with no worker: the run is queued, and the page says why it stays so.
                await page.click("[data-testid=run-now]")
                await expect(page.locator("#action-result")).to_contain_text("已排队")
                await expect(notice).to_be_visible(timeout=15000)
                await expect(notice).to_contain_text(NOTICE_ZH)
                await expect(notice).to_contain_text("unigate worker")
                await page.screenshot(path=str(SHOTS / "scheme-waiting-for-worker.png"), full_page=True)
                status = page.locator("#runs-body tr").first.locator("[data-testid=run-status]")
                await expect(status).to_have_attribute("data-status", "queued", timeout=15000)
                run_id = int(await page.locator("#runs-body tr").first.get_attribute("data-run") or 0)

                # The run's own page says it too, and so does the admin API's run.
                await page.locator("#runs-body tr").first.locator("a").click()
                await expect(page.locator("#run")).to_have_attribute("data-status", "queued", timeout=15000)
                run_notice = page.get_by_test_id("worker-notice")
                await expect(run_notice).to_be_visible(timeout=15000)
                await expect(run_notice).to_contain_text(NOTICE_ZH)
                await page.screenshot(path=str(SHOTS / "run-waiting-for-worker.png"))
                answer = (await session.call("GET", f"/admin/api/runs/{run_id}")).json()
                assert answer["status"] == "queued"
                assert answer["waiting"]["reason"] == "no_worker"
                assert "start `unigate worker`" in answer["waiting"]["detail"]

                # In English for an admin who reads English (the page as the server draws it).
                await session.form("/portal/locale", {"locale": "en", "next": "/portal"})
                english = await session.get(f"/admin/schemes/runs/{run_id}")
                assert NOTICE_EN in _notice_text(english)
                assert "start `unigate worker`" in _notice_text(english)
                designer = await session.get(f"/admin/schemes/{flow.name}")
                assert NOTICE_EN in _notice_text(designer)

                # `unigate worker` starts: it picks the run up, the run ends, and the notice is gone.
                worker = run_process(
                    [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
                    env={**flow.env, "UNIGATE_SCHEME_POLL_SECONDS": "0.2"},
                    log_path=tmp_path / "worker.log",
                    ready_url=f"http://127.0.0.1:{port}/healthz",
                )
                with worker:
                    await expect(page.locator("#run")).to_have_attribute(
                        "data-status", "succeeded", timeout=60000
                    )
                    await expect(run_notice).to_be_hidden(timeout=15000)
                    await page.goto(f"{gateway.url}/admin/schemes/{flow.name}")
                    await expect(page.get_by_test_id("worker-notice")).to_be_hidden()
                    # A second run while the worker runs: queued for a moment, but never "no worker".
                    again = (await session.call("POST", f"/admin/api/schemes/{flow.name}/run")).json()["run"]
                    detail = (await session.call("GET", f"/admin/api/runs/{again}")).json()
                    assert detail["waiting"] is None

                    async def done() -> bool:
                        got = (await session.call("GET", f"/admin/api/runs/{again}")).json()
                        return bool(got["status"] in FINAL)

                    await until(done, 60, "the second run to end")

                # The worker stopped cleanly: a run queued now waits again, and says for how long none was
                # seen: in the API, on the page as drawn, and as the page's script keeps it up to date.
                third = (await session.call("POST", f"/admin/api/schemes/{flow.name}/run")).json()["run"]
                waiting = (await session.call("GET", f"/admin/api/runs/{third}")).json()["waiting"]
                assert waiting is not None and waiting["silent_seconds"] is not None
                assert waiting["worker_seen_at"] is not None
                assert re.search(r"none has been seen for \d+ (s|min)", waiting["detail"]), waiting
                assert waiting["silent_for"]["unit"] in ("s", "min")
                drawn = _notice_text(await session.get(f"/admin/schemes/runs/{third}"))
                assert re.search(r"none has been seen for \d+ (s|min);", drawn), drawn
                await page.goto(f"{gateway.url}/admin/schemes/runs/{third}")
                await expect(page.locator("#run")).to_have_attribute("data-status", "queued", timeout=15000)
                said = re.compile(r"none has been seen for \d+ (s|min); start")  # the account reads English
                await expect(page.get_by_test_id("worker-notice")).to_have_text(said, timeout=15000)
            finally:
                await browser.close()
    finally:
        await session.http.aclose()


async def test_the_scheme_list_and_the_list_command_say_a_run_waits_for_a_worker(
    gateway: Gateway, flow: Flow
) -> None:
    await _no_worker_alive()
    admin = await make_account("admin", prefix="list")
    session = await sign_in(gateway.url, admin)
    try:
        assert _waiting_run(await session.get("/admin/schemes"), flow.name) is None  # nothing queued yet

        # A run queued on a node with no worker: the list page says so, as the scheme's page does, and
        # marks the scheme whose run waits; `unigate scheme list` says it too, with the run.
        queued = await service.run_now(flow.name)
        listed = await session.get("/admin/schemes")
        assert NOTICE_ZH in _notice_text(listed) and "unigate worker" in _notice_text(listed)
        assert _waiting_run(listed, flow.name) == queued
        command = unigate(flow.env, "scheme", "list")
        assert any(line.startswith(f"{flow.name} ") for line in command.stdout.splitlines())
        said = f"{flow.name}: run {queued} is waiting for a worker: none has been seen"
        line = next(line for line in command.stderr.splitlines() if line.startswith(said))
        assert line.endswith("start `unigate worker`"), line

        # Open dead letters are the scheme's, whatever its last run says: the list page, the list command
        # and the admin API's list count them.
        letters = [
            DeadLetter(slot=f"{flow.scheme_id}:L{n}", scheme=flow.scheme_id, run=queued, record_key=f"L{n}")
            for n in range(1234)
        ]
        await DeadLetter.insert(
            *letters,
            DeadLetter(
                slot=f"{flow.scheme_id}:done", scheme=flow.scheme_id, run=queued, record_key="done",
                status="resolved",
            ),
        )  # fmt: skip
        listed = await session.get("/admin/schemes")
        row = re.search(rf'<tr data-scheme="{re.escape(flow.name)}">(.*?)</tr>', listed.text, re.S)
        assert row, listed.text[:500]
        cell = re.search(r'data-testid="open-dead-letters" data-open="(\d+)">(.*?)</td>', row.group(1), re.S)
        assert cell and cell.group(1) == "1234", row.group(1)
        # Said as people read it, and a way to them: the dead letters of its last run's page.
        assert re.sub(r"<[^>]+>", "", cell.group(2)) == "1,234", cell.group(0)
        assert f'href="/admin/schemes/runs/{queued}#dead-h"' in cell.group(2)
        line = next(
            line
            for line in unigate(flow.env, "scheme", "list").stdout.splitlines()
            if line.startswith(f"{flow.name} ")
        )
        assert line.endswith("; 1234 open dead letter(s)"), line
        api = await session.get("/admin/api/schemes")
        assert {entry["name"]: entry["open_dead_letters"] for entry in api.json()}[flow.name] == 1234

        # A worker alive (it beats): neither says a word of it.
        await presence.beat("list-test-worker")
        listed = await session.get("/admin/schemes")
        assert re.search(r'<p id="worker-notice"[^>]* hidden', listed.text)
        assert _waiting_run(listed, flow.name) is None
        assert flow.name not in unigate(flow.env, "scheme", "list").stderr
    finally:
        await presence.gone("list-test-worker")
        await session.http.aclose()


def _waiting_run(answer: httpx.Response, scheme: str) -> int | None:
    """The run the list page marks as waiting for a worker in `scheme`'s row (None: not marked)."""
    assert answer.status_code == 200, answer.text[:500]
    row = re.search(rf'<tr data-scheme="{re.escape(scheme)}">(.*?)</tr>', answer.text, re.S)
    assert row, f"{scheme} is not listed"
    marked = re.search(r'data-waiting="(\d+)"', row.group(1))
    return int(marked.group(1)) if marked else None


def _notice_text(answer: httpx.Response) -> str:
    found = re.search(r'<p id="worker-notice"[^>]*>(.*?)</p>', answer.text, re.S)
    assert found, answer.text[:500]
    assert "hidden" not in found.group(0).split(">")[0], found.group(0)
    return found.group(1)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (None, "none has been seen yet"),
        (42, "for 42 s"),
        (400, "for 6 min"),
        (7300, "for 2 h"),
        (3 * 86400 + 5, "for 3 d"),
    ],
)
def test_the_waiting_reason_says_how_long_no_worker_was_seen(seconds: int | None, said: str) -> None:
    now = time.time()
    latest = None if seconds is None else now - seconds
    queued = {"status": "queued", "heartbeat_at": 0.0}
    reason = presence.waiting(queued, (False, latest), 15.0, now)
    assert reason is not None and said in reason["detail"]
    # What the pages say it with, in their language: the same figure and unit as the detail.
    silent = reason["silent_for"]
    assert (silent is None) == (seconds is None)
    assert silent is None or said.endswith(f"for {silent['n']} {silent['unit']}")
    assert presence.waiting(queued, (True, latest), 15.0, now) is None  # a worker is alive: nothing to say
    beating = {"status": "running", "heartbeat_at": now - 1}
    assert presence.waiting(beating, (False, latest), 15.0, now) is None  # driven by `unigate scheme run`
    assert presence.waiting({"status": "succeeded"}, (False, latest), 15.0, now) is None


async def test_a_worker_beats_while_it_runs_and_is_gone_when_it_stops(
    gateway: Gateway, flow: Flow, tmp_path: Path
) -> None:
    await _no_worker_alive()
    port = free_port()
    with run_process(
        [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(port)],
        env={**flow.env, "UNIGATE_SCHEME_LEASE_SECONDS": "2"},
        log_path=tmp_path / "worker.log",
        ready_url=f"http://127.0.0.1:{port}/healthz",
    ):
        async with httpx.AsyncClient(timeout=5) as http:
            name = (await http.get(f"http://127.0.0.1:{port}/healthz")).json()["worker"]

        async def beating() -> bool:
            row = await SchemeWorker.select().where(SchemeWorker.name == name).first()
            return row is not None and row["seen_at"] > time.time() - 2 and not row["stopped"]

        await until(beating, 20, "the worker's first beat")
        first = (await SchemeWorker.select().where(SchemeWorker.name == name).first()) or {}

        async def beat_again() -> bool:
            row = await SchemeWorker.select().where(SchemeWorker.name == name).first()
            return row is not None and row["seen_at"] > first["seen_at"]

        await until(beat_again, 20, "a later beat")
    row = await SchemeWorker.select().where(SchemeWorker.name == name).first()
    assert row is not None and row["stopped"] is True


async def test_keyset_pages_and_worker_beats_on_sqlite_and_postgresql(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        # Never called: the history is written here, not run.
        nowhere = dict.fromkeys(REFERENCE_ENDS, "http://127.0.0.1:9")
        names = {"source": "src", "target": "dst", "tracking": "kd"}
        scheme = await install_reference_scheme(Vault(SECRET_KEY), nowhere, names)
        rows = await SchemeRun.insert(
            *(SchemeRun(scheme=scheme, trigger="manual", status="succeeded") for _ in range(45))
        )
        ids = sorted(int(row["id"]) for row in rows)
        name = service.REFERENCE_SCHEME

        pages, before = [], None
        while page := [run["id"] for run in (await service.run_page(name, 20, before=before)).rows]:
            pages.append(page)
            before = page[-1]
        assert [run for page in pages for run in page] == ids[::-1]
        assert [len(page) for page in pages] == [20, 20, 5]
        newer = (await service.run_page(name, 20, after=pages[2][0])).rows
        assert [run["id"] for run in newer] == pages[1]
        # Older than the oldest: nothing, and a way back to the oldest runs.
        past = await service.run_page(name, 20, before=ids[0])
        assert past.rows == [] and past.links() == {"prev": {"after": ids[0] - 1}}
        oldest = await service.run_page(name, 20, after=past.links()["prev"]["after"])
        assert [run["id"] for run in oldest.rows] == ids[:20][::-1]

        await RecordResult.insert(
            *(
                RecordResult(
                    slot=f"{ids[0]}:K{n:03d}",
                    run=ids[0],
                    scheme=scheme,
                    record_key=f"K{n:03d}",
                    status="success",
                )
                for n in range(250)
            )
        )
        keys: list[str] = []
        cursor: int | None = None
        while True:
            answer = service.records_answer(
                ids[0], await service.record_page(ids[0], limit=100, after=cursor)
            )
            keys.extend(record["record_key"] for record in answer["records"])
            if answer["next"] is None:
                break
            cursor = answer["next"]
        assert keys == [f"K{n:03d}" for n in range(250)]
        back = service.records_answer(
            ids[0], await service.record_page(ids[0], limit=100, before=answer["previous"])
        )
        assert [r["record_key"] for r in back["records"]] == [f"K{n:03d}" for n in range(100, 200)]

        await DeadLetter.insert(
            *(
                DeadLetter(
                    slot=f"{scheme}:D{n:03d}",
                    scheme=scheme,
                    run=ids[0],
                    record_key=f"D{n:03d}",
                    stage="target",
                )
                for n in range(120)
            )
        )
        letters: list[str] = []
        first_page = (await service.dead_letter_page(name, limit=50)).rows
        after: int | None = None
        while page_of := (await service.dead_letter_page(name, limit=50, after=after)).rows:
            letters.extend(letter["record_key"] for letter in page_of)
            after = page_of[-1]["id"]
        assert letters == [f"D{n:03d}" for n in range(120)]  # oldest first, each once
        tail = (await service.dead_letter_page(name, limit=50, before=after)).rows
        assert [letter["record_key"] for letter in tail] == [f"D{n:03d}" for n in range(69, 119)]
        # Past the last letter: nothing, and a way back to the last letters.
        past = await service.dead_letter_page(name, limit=50, after=after)
        assert past.rows == [] and past.links() == {"prev": {"before": after + 1}}
        last = await service.dead_letter_page(name, limit=50, before=past.links()["prev"]["before"])
        assert [letter["record_key"] for letter in last.rows] == [f"D{n:03d}" for n in range(70, 120)]
        # A replay resolved the first page's letters: the page before the second is empty, and leads on.
        second = await service.dead_letter_page(name, limit=50, after=first_page[-1]["id"])
        await DeadLetter.update({DeadLetter.status: "resolved"}).where(
            DeadLetter.id.is_in([letter["id"] for letter in first_page])
        )
        gone = await service.dead_letter_page(name, limit=50, before=second.rows[0]["id"])
        assert gone.rows == [] and gone.links() == {"next": {"after": second.rows[0]["id"] - 1}}
        again = await service.dead_letter_page(name, limit=50, after=gone.links()["next"]["after"])
        assert [letter["record_key"] for letter in again.rows] == [f"D{n:03d}" for n in range(50, 100)]

        # A queued run with no worker waits; a beating worker ends the wait; a stopped one brings it back.
        queued = await service.run_now(name)
        assert (await service.run_detail(queued))["waiting"]["silent_seconds"] is None
        await presence.beat("bench-host-1")
        assert (await service.run_detail(queued))["waiting"] is None
        assert (await service.scheme_waiting(name)) is None
        await presence.gone("bench-host-1")
        waiting = await service.scheme_waiting(name)
        assert waiting is not None and waiting["run"] == queued and waiting["silent_seconds"] is not None


async def test_whether_a_worker_is_alive_and_when_one_was_last_seen_on_sqlite_and_postgresql(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    now = time.time()
    async with bound_store(env):
        assert await presence.last_seen(15.0, now) == (False, None)  # none has ever beaten
        await presence.beat("stopped-host", now - 1)
        await presence.gone("stopped-host")  # the latest beat, but it said goodbye
        await presence.beat("silent-host", now - 60)  # never said goodbye, silent past its lease
        assert await presence.last_seen(15.0, now) == (False, now - 1)
        await presence.beat("live-host", now - 5)
        assert await presence.last_seen(15.0, now) == (True, now - 1)
        assert await presence.last_seen(4.0, now) == (False, now - 1)  # a shorter lease: it is silent
