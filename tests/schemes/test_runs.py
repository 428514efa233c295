"""A scheme run end to end in-process against the simulators: checkpoints, deduplication, retries,
dead letters and replay. The target simulator counts every trade it is sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.connectors.simdata import CHINA_TZ, format_time
from gateway.schemes import journal, service
from gateway.store.scheme_tables import DeadLetter, RecordResult
from tests.schemes.conftest import tid_of


def _touch(stockouts: list[dict[str, Any]], state: Any, index: int, **changes: str) -> dict[str, Any]:
    """Change a source stockout as the ERP would: new values, a new modification time."""
    record = stockouts[index]
    record.update(changes, modified=format_time(datetime.now(CHINA_TZ)))
    state._by_time.clear()  # the simulator's time index, rebuilt on the next query
    return record


async def test_checkpoint_advances_and_unchanged_records_are_not_pushed_again(flow_factory):
    flow = await flow_factory(120)
    target = flow.sims.target
    expected = flow.expected_tids()

    first = await flow.run()
    assert first["status"] == "succeeded", first
    assert set(target.pushes) == expected
    assert all(count == 1 for count in target.pushes.values())
    checkpoint = await journal.checkpoint(flow.scheme_id)
    assert checkpoint is not None

    # Incremental: only the look-back window is read again; its records are unchanged, so nothing is pushed.
    second = await flow.run()
    assert second["status"] == "succeeded" and second["succeeded"] == 0
    assert (await journal.checkpoint(flow.scheme_id)) > checkpoint

    # A full re-read sees every record again: all unchanged, all skipped, none pushed.
    full = await flow.run(full=True)
    assert full["skipped"] == len(expected) and full["succeeded"] == 0
    assert sum(target.pushes.values()) == len(expected)

    # One record changes in the source: the next incremental run pushes it, and only it.
    state = flow.sims.source_state
    index = next(i for i, s in enumerate(state.stockouts) if s["status"] == "95")
    changed = _touch(state.stockouts, state, index, receiver_address="新地址路 99 号")
    third = await flow.run()
    assert third["succeeded"] == 1, third
    assert target.pushes[tid_of(changed)] == 2
    assert target.state.pushed[tid_of(changed)].trade["receiver_address"] == "新地址路 99 号"
    assert sum(target.pushes.values()) == len(expected) + 1


async def test_a_scheme_switched_to_another_target_pushes_every_record_to_it_once(flow_factory, sims_factory):
    flow = await flow_factory(60)
    expected = flow.expected_tids()
    first = await flow.run()
    assert first["status"] == "succeeded" and set(flow.sims.target.pushes) == expected

    # A second target ERP, on its own connection; the scheme is pointed at it.
    from gateway.connectors.wangdiantong import simulator as wdt_sim
    from gateway.store import manage
    from gateway.store.crypto import Vault

    second_sims = sims_factory(1)
    extra, extra_url = second_sims.target, second_sims.target_url
    name = f"{flow.connections['target']}-extra"
    await manage.put_connection(
        Vault(flow.settings.secret_key),
        name=name,
        system="wangdiantong",
        base_url=extra_url,
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
    )
    scheme = await service.get_scheme(flow.name)
    definition = scheme["definition"]
    await service.put_scheme(
        flow.name, {**definition, "target": {**definition["target"], "connection": name}}
    )

    # A full run delivers every record to the new target, none skipped as "unchanged"; the old one gets
    # nothing more.
    moved = await flow.run(full=True)
    assert moved["status"] == "succeeded", moved
    assert moved["succeeded"] == len(expected) and moved["skipped"] == 0, moved
    assert set(extra.pushes) == expected and all(count == 1 for count in extra.pushes.values())
    assert set(extra.state.pushed) >= expected
    assert sum(flow.sims.target.pushes.values()) == len(expected)

    # Once there, unchanged records are skipped again.
    again = await flow.run(full=True)
    assert again["skipped"] == len(expected) and again["succeeded"] == 0, again
    assert sum(extra.pushes.values()) == len(expected)


async def test_a_failed_source_leaves_the_checkpoint_where_it_was(flow_factory):
    flow = await flow_factory(30)
    await flow.run()
    before = await journal.checkpoint(flow.scheme_id)

    from gateway.store import manage
    from gateway.store.crypto import Vault
    from tests.services import free_port

    await manage.put_connection(
        Vault(flow.settings.secret_key),
        name=flow.connections["source"],
        system="wangdiantong",
        base_url=f"http://127.0.0.1:{free_port()}",
        credentials={"sid": "s", "appkey": "a", "appsecret": "x"},
    )
    failed = await flow.run()
    # The source became unreachable: the way out retried, then its breaker opened; the run says so.
    assert failed["status"] == "failed" and flow.connections["source"] in failed["error"]
    assert await journal.checkpoint(flow.scheme_id) == before


async def test_retryable_target_answers_are_retried_with_backoff(flow_factory):
    flow = await flow_factory(60, upstream_retries=0)
    flow.sims.target.fail_next = 2  # "too frequent" twice; the third try goes through
    summary = await flow.run(concurrency=1)
    assert summary["status"] == "succeeded", summary
    assert set(flow.sims.target.pushes) == flow.expected_tids()
    attempts = {
        row["attempts"]
        for row in await RecordResult.select(RecordResult.attempts).where(RecordResult.run == summary["id"])
    }
    # The batch's first trade_push calls (one per shop) were refused and retried: those records took 2.
    assert flow.sims.target.fail_next == 0
    assert attempts == {1, 2}
    assert all(count == 1 for count in flow.sims.target.pushes.values())


async def test_failures_go_to_dead_letters_and_replay_after_the_mapping_is_fixed(flow_factory):
    flow = await flow_factory(120)
    scheme = await service.get_scheme(flow.name)
    good = await service.get_mapping(scheme["definition"]["mapping"]["name"])
    broken = dict(good["spec"])
    fields = dict(broken["fields"])
    # A mapping mistake (finished stockouts unmapped) and a data mistake the target refuses (a warehouse
    # the target ERP does not have).
    fields["trade_status"] = {
        **fields["trade_status"],
        "map": {"55": "30", "95": "50", "105": "50", "113": "50"},
    }
    broken["fields"] = fields
    broken["tables"] = {**broken.get("tables", {}), "warehouses": {"SHJD01": "NO-SUCH-WH"}}
    saved = await service.save_mapping(broken, comment="broken on purpose")
    definition = {**scheme["definition"], "mapping": saved}
    await service.put_scheme(flow.name, definition)

    first = await flow.run()
    assert first["status"] == "partial"
    stockouts = [s for s in flow.sims.source_state.stockouts if s["status"] != "5"]
    unmapped = {s["stockout_no"] for s in stockouts if s["status"] == "110"}
    refused = {s["stockout_no"] for s in stockouts if s["status"] != "110" and s["warehouse_no"] == "SHJD01"}
    assert unmapped and refused
    letters = (await service.dead_letter_page(flow.name)).rows
    by_key = {letter["record_key"]: letter for letter in letters}
    assert set(by_key) == unmapped | refused
    one_refused = await service.dead_letter(by_key[next(iter(refused))]["id"])
    assert one_refused["stage"] == "target" and one_refused["mapped_record"]["warehouse_no"] == "NO-SUCH-WH"
    assert "仓库不存在" in one_refused["error"]["message"]
    assert one_refused["source_record"]["stockout_no"] in refused
    one_unmapped = await service.dead_letter(by_key[next(iter(unmapped))]["id"])
    assert one_unmapped["stage"] == "mapping" and one_unmapped["mapped_record"] is None
    assert one_unmapped["error"]["field"] == "trade_status"
    # The good records went through beside them, each once.
    delivered = len(stockouts) - len(unmapped) - len(refused)
    assert first["succeeded"] == delivered == sum(flow.sims.target.pushes.values())
    # Failed records are accounted for in the dead-letter store, so the checkpoint moved.
    assert await journal.checkpoint(flow.scheme_id) is not None

    # Replayed before the fix, two letters fail again and nothing goes through: the run failed, it is not
    # "partial", and it says where its records went.
    early = sorted(by_key)[:2]
    again = await flow.run(run_id=await service.replay(flow.name, [by_key[key]["id"] for key in early]))
    assert again["status"] == "failed" and again["failed"] == 2 and again["succeeded"] == 0, again
    assert "dead letters" in again["error"]
    assert len((await service.dead_letter_page(flow.name)).rows) == len(by_key)

    # Fix the mapping, then replay two selected letters, then the rest.
    await service.put_scheme(
        flow.name, {**scheme["definition"], "mapping": {"name": good["name"], "version": good["version"]}}
    )
    chosen = [by_key[key]["id"] for key in sorted(by_key)[:2]]
    replay = await flow.run(run_id=await service.replay(flow.name, chosen))
    assert replay["trigger"] == "replay" and replay["succeeded"] == 2
    assert len((await service.dead_letter_page(flow.name)).rows) == len(by_key) - 2
    rest = await flow.run(run_id=await service.replay(flow.name))
    assert rest["succeeded"] == len(by_key) - 2 and rest["failed"] == 0
    assert (await service.dead_letter_page(flow.name)).rows == []
    assert len((await service.dead_letter_page(flow.name, status="resolved")).rows) == len(by_key)
    assert set(flow.sims.target.pushes) == flow.expected_tids()
    assert all(count == 1 for count in flow.sims.target.pushes.values())
    assert (
        await DeadLetter.count().where(DeadLetter.scheme == flow.scheme_id, DeadLetter.status == "open") == 0
    )


async def test_deduplication_and_checkpoints_hold_on_postgresql(flow_factory, postgres_url):
    flow = await flow_factory(40, database_url=postgres_url)
    first = await flow.run()
    assert first["status"] == "succeeded" and first["succeeded"] == len(flow.expected_tids())
    again = await flow.run(full=True)
    assert again["skipped"] == len(flow.expected_tids()) and again["succeeded"] == 0
    assert sum(flow.sims.target.pushes.values()) == len(flow.expected_tids())
    assert await journal.checkpoint(flow.scheme_id) is not None


async def test_records_a_rate_limiting_target_never_took_are_read_again_by_the_next_run(flow_factory):
    flow = await flow_factory(40, upstream_retries=0)
    target = flow.sims.target
    target.fail_next = 10**6  # "too frequent" to every trade_push, past every retry
    refused = await flow.run()
    # Nothing reached the target: the run says so, and its window is not done.
    assert refused["status"] == "failed" and "next run tries them again" in refused["error"]
    assert refused["failed"] == len(flow.expected_tids()) and not target.pushes
    assert await journal.checkpoint(flow.scheme_id) is None
    letters = (await service.dead_letter_page(flow.name)).rows
    assert {(await service.dead_letter(letters[0]["id"]))["error"]["code"]} == {"target_unavailable"}

    # The target takes trades again: the next incremental run, with no replay, delivers every record once
    # and closes their letters.
    target.fail_next = 0
    again = await flow.run()
    assert again["status"] == "succeeded" and again["succeeded"] == len(flow.expected_tids())
    assert set(target.pushes) == flow.expected_tids()
    assert all(count == 1 for count in target.pushes.values())
    assert (await service.dead_letter_page(flow.name)).rows == []
    assert await journal.checkpoint(flow.scheme_id) is not None
