"""The reference scheme's mapping: generated stockouts become valid trade_push trades, and the whole
Wangdiantong seed, read and enriched as the reference scheme does, is pushed into a second ERP.

`paid` must agree with the lines by the vendor's own formula.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.connectors.base import ConnectionConfig, Connector, Record
from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.registry import build
from gateway.connectors.simdata import CHINA_TZ
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.mapping import Mapping, MappingError, compile_mapping
from gateway.schemes.model import SchemeDefinition, parse_definition
from gateway.schemes.runner import Context, enrich_mapping, enrich_records
from gateway.schemes.service import template
from gateway.upstream import Upstream
from tests.mapping.seed_stockouts import REFERENCE, stockout, stockouts

# seed-scheme.md's target table, field by field.
TRADE_FIELDS = [
    "tid",
    "trade_status",
    "pay_status",
    "delivery_term",
    "trade_time",
    "pay_time",
    "fenxiao_type",
    "purchase_id",
    "fenxiao_nick",
    "buyer_nick",
    "buyer_email",
    "pay_id",
    "pay_account",
    "receiver_name",
    "receiver_address",
    "receiver_province",
    "receiver_city",
    "receiver_district",
    "receiver_mobile",
    "receiver_telno",
    "receiver_zip",
    "logistics_type",
    "invoice_kind",
    "invoice_title",
    "invoice_content",
    "remark_flag",
    "buyer_message",
    "seller_memo",
    "seller_flag",
    "post_amount",
    "cod_amount",
    "ext_cod_fee",
    "other_amount",
    "paid",
    "is_auto_wms",
    "warehouse_no",
    "order_list",
]
LINE_FIELDS = [
    "oid",
    "num",
    "price",
    "status",
    "refund_status",
    "goods_id",
    "spec_id",
    "goods_no",
    "spec_no",
    "goods_name",
    "spec_name",
    "adjust_amount",
    "discount",
    "share_discount",
    "remark",
    "cid",
    "trade_list",
    "shop_no",
    "switch",
]
# Fields that may be empty (null) by design: see the comments in the mapping.
MAY_BE_NULL = {"is_auto_wms", "trade_list"}

VENDOR_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
AMOUNT = re.compile(r"^-?\d+\.\d{4}$")


@pytest.fixture(scope="module")
def reference() -> Mapping:
    return compile_mapping(REFERENCE)


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    return stockouts(400)


def paid_by_vendor_formula(trade: dict[str, Any]) -> Decimal:
    """protocols.md 1.4: Σ(price·num + adjust − discount − share_discount) + post_amount + other_amount."""
    lines = sum(
        (
            Decimal(line["price"]) * Decimal(line["num"])
            + Decimal(line["adjust_amount"])
            - Decimal(line["discount"])
            - Decimal(line["share_discount"])
            for line in trade["order_list"]
        ),
        Decimal(0),
    )
    return lines + Decimal(trade["post_amount"]) + Decimal(trade["other_amount"])


def test_every_target_field_is_filled(reference: Mapping, sample: list[dict[str, Any]]) -> None:
    result = reference.many(sample)
    assert result.errors == []
    for trade in result.records:
        assert list(trade) == TRADE_FIELDS
        assert [name for name, value in trade.items() if value is None] == ["is_auto_wms"]
        for line in trade["order_list"]:
            assert list(line) == LINE_FIELDS
            assert {name for name, value in line.items() if value is None} <= MAY_BE_NULL


def test_paid_matches_the_vendor_formula_and_what_the_buyer_paid(
    reference: Mapping, sample: list[dict[str, Any]]
) -> None:
    for record, trade in zip(sample, reference.many(sample).records, strict=True):
        assert Decimal(trade["paid"]) == paid_by_vendor_formula(trade)
        # Lines total share_amount (or price·num − discount without one), so paid is what was paid.
        expected = sum(
            (
                Decimal(d["share_amount"])
                if d["share_amount"]
                else Decimal(d["sell_price"]) * Decimal(d["goods_count"]) - Decimal(d["discount"])
                for d in record["details_list"]
            ),
            Decimal(0),
        ) + Decimal(record["post_amount"])
        assert Decimal(trade["paid"]) == expected


def test_trades_pass_trade_push_validation(reference: Mapping, sample: list[dict[str, Any]]) -> None:
    for record, trade in zip(sample, reference.many(sample).records, strict=True):
        assert 0 < len(trade["tid"]) <= 40
        first_tid = record["src_tids"].split(",")[0]
        assert trade["tid"] == (first_tid or record["src_order_no"])
        assert trade["trade_status"] in {"50", "70"}
        assert trade["trade_status"] == ("70" if record["status"] == "110" else "50")
        assert trade["pay_status"] == "2"
        assert trade["delivery_term"] == ("2" if Decimal(record["cod_amount"]) > 0 else "1")
        assert VENDOR_TIME.match(trade["trade_time"]) and VENDOR_TIME.match(trade["pay_time"])
        assert trade["trade_time"] == record["trade_time"]
        assert trade["pay_time"] != "0000-00-00 00:00:00"
        for amount in ("post_amount", "cod_amount", "ext_cod_fee", "other_amount", "paid"):
            assert AMOUNT.match(trade[amount]), amount
        assert trade["seller_flag"] in set("012345") and trade["remark_flag"] in set("012345")
        assert trade["invoice_kind"] in set("01234")
        for detail, line in zip(record["details_list"], trade["order_list"], strict=True):
            expected_oid = detail["src_oid"] or f"{record['stockout_no']}-{detail['rec_id']}"
            assert line["oid"] == expected_oid and len(line["oid"]) <= 40
            assert Decimal(line["num"]) == Decimal(detail["goods_count"])
            assert Decimal(line["price"]) == Decimal(detail["sell_price"])
            assert line["status"] == trade["trade_status"]
            assert line["refund_status"] in set("012345")
            assert line["goods_id"] and line["goods_id"] not in ("", "0")
            assert line["goods_id"] == (
                detail["goods_id"] if detail["goods_id"] not in ("", "0") else detail["goods_no"]
            )
            assert line["spec_no"] or line["goods_no"]
            for amount in ("num", "price", "adjust_amount", "discount", "share_discount"):
                assert AMOUNT.match(line[amount]) and Decimal(line[amount]) >= 0, amount
            assert line["shop_no"] == record["shop_no"] and line["switch"] == "1"
    oids = [line["oid"] for trade in reference.many(sample).records for line in trade["order_list"]]
    assert len(oids) == len(set(oids)), "oid must be unique per seller"


def test_admin_tables_translate_shop_and_warehouse_codes() -> None:
    mapping = compile_mapping(REFERENCE, tables={"shops": {"tmall01": "TM-01"}, "warehouses": {"WH01": "HZ"}})
    record = stockout(random.Random(1), 1)
    record.update(shop_no="tmall01", warehouse_no="WH01")
    trade = mapping(record)
    assert trade["warehouse_no"] == "HZ" and {line["shop_no"] for line in trade["order_list"]} == {"TM-01"}
    record.update(shop_no="jd01", warehouse_no="WH02")
    trade = mapping(record)
    assert trade["warehouse_no"] == "WH02" and {line["shop_no"] for line in trade["order_list"]} == {"jd01"}


def test_records_the_target_cannot_take_fail_with_their_key(reference: Mapping) -> None:
    rng = random.Random(3)
    cancelled, too_long, no_lines_goods = stockout(rng, 1), stockout(rng, 2), stockout(rng, 3)
    cancelled["status"] = "5"
    too_long.update(src_tids="T" * 41)
    no_lines_goods["details_list"][0].update(spec_no="", goods_no="")
    result = reference.many([cancelled, too_long, stockout(rng, 4), no_lines_goods])
    assert len(result.records) == 1
    assert [(e.index, e.key, e.field) for e in result.errors] == [
        (0, cancelled["stockout_no"], "trade_status"),
        (1, too_long["stockout_no"], "tid"),
        (3, no_lines_goods["stockout_no"], "order_list[0].spec_no"),
    ]
    assert result.errors[0].message.startswith("'5' is refused: a cancelled stockout is not pushed")
    assert "at most 40" in result.errors[1].message
    with pytest.raises(MappingError):
        reference(cancelled)


# --- the whole seed, over HTTP, as the reference scheme reads, enriches and pushes it ---------------------

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)
SOURCE = wdt_sim.WdtSimulatorConfig(anchor=ANCHOR)  # the demo account, with the whole seed (2,400 stockouts)
TARGET = wdt_sim.WdtSimulatorConfig(seed_data=False, appkey="target-key", appsecret="target-secret")
TRACKING = kd100_sim.Kd100SimulatorConfig(anchor=ANCHOR)  # tracks the same seed's waybills
CANCELLED = "5"


@dataclass
class Ends:
    """The simulators behind the reference scheme's three connections, and the scheme as installed."""

    source: TestServer
    target: TestServer
    connectors: dict[str, Connector]
    definition: SchemeDefinition

    def connector(self, name: str) -> Connector:
        return self.connectors[name]


@pytest.fixture(scope="module")
async def ends() -> AsyncIterator[Ends]:
    servers = {
        "wdt-demo": TestServer(wdt_sim.create_app(SOURCE), host="127.0.0.1"),
        "wdt-target": TestServer(wdt_sim.create_app(TARGET), host="127.0.0.1"),
        "kd100-demo": TestServer(kd100_sim.create_app(TRACKING), host="127.0.0.1"),
    }
    credentials: dict[str, tuple[str, dict[str, Any]]] = {
        name: ("wangdiantong", {"sid": erp.sid, "appkey": erp.appkey, "appsecret": erp.appsecret})
        for name, erp in (("wdt-demo", SOURCE), ("wdt-target", TARGET))
    }
    credentials["kd100-demo"] = ("kuaidi100", {"customer": TRACKING.customer, "key": TRACKING.key})
    upstream = Upstream(timeout_seconds=10)
    # The reference scheme as `unigate seed-demo` installs it; its connection names are the ones above.
    installed = {**template()["definition"], "mapping": {"name": "reference", "version": 1}}
    definition = parse_definition(installed)
    try:
        for server in servers.values():
            await server.start_server()
        connectors = {
            name: build(
                ConnectionConfig(
                    name=name, system=system, base_url=str(servers[name].make_url("")), credentials=creds
                ),
                upstream,
            )
            for name, (system, creds) in credentials.items()
        }
        yield Ends(servers["wdt-demo"], servers["wdt-target"], connectors, definition)
    finally:
        await upstream.close()
        for server in servers.values():
            await server.close()


async def pull_all(ends: Ends, params: dict[str, Any]) -> list[Record]:
    """Every stockout of the seed's 30 days the source operation gives for these parameters, page by page."""
    source = ends.definition.source
    connector = ends.connector(source.connection)
    records: list[Record] = []
    cursor: str | None = None
    while True:
        page = await connector.pull(
            source.operation, params, ANCHOR - timedelta(days=31), ANCHOR + timedelta(hours=1), cursor
        )
        records.extend(page.records)
        cursor = page.cursor
        if cursor is None:
            return records


async def test_the_whole_seed_is_pushed_through_trade_push_without_a_rejected_record(
    reference: Mapping, ends: Ends
) -> None:
    seeded = {record["stockout_no"]: record for record in ends.source.app[wdt_sim.STATE_KEY].stockouts}
    assert len(seeded) == SOURCE.stockout_count == 2400

    # What the scheme reads: every status the mapping takes (cancelled stockouts are left out, see the
    # mapping's trade_status), over signed HTTP through the connector. The cancelled ones are read too,
    # only to account for every seeded record.
    read = await pull_all(ends, ends.definition.source.params)
    cancelled = await pull_all(ends, {"statuses": [CANCELLED]})
    read_nos = [record["stockout_no"] for record in read]
    assert len(read_nos) == len(set(read_nos))
    assert CANCELLED not in {record["status"] for record in read}
    assert {record["status"] for record in cancelled} == {CANCELLED}
    assert set(read_nos) | {record["stockout_no"] for record in cancelled} == set(seeded)
    assert len(read) + len(cancelled) == len(seeded)

    # Enriched exactly as a run enriches: the scheme's kuaidi100 step, its inputs, tables and copy.
    context = Context(
        0,
        "stockouts-to-wdt-target",
        ends.definition,
        reference,
        [enrich_mapping(step) for step in ends.definition.enrich],
        ends.connector,
    )
    enriched = await enrich_records(context, read)
    for record in enriched:
        assert "_error" not in record, record["_error"]
        if record["logistics_no"]:
            tracking = record["kuaidi100Data"]
            assert tracking["message"] == "ok" and tracking["status"] == "200", tracking
            assert tracking["nu"] == record["logistics_no"] and tracking["tid"] == record["tid"]
            assert tracking["data"], "a shipped waybill has tracking events"
        else:  # approved, not shipped yet: no waybill to look up
            assert record["status"] == "55" and "kuaidi100Data" not in record

    result = reference.many(enriched)
    assert result.errors == []
    for record, trade in zip(enriched, result.records, strict=True):
        assert Decimal(trade["paid"]) == paid_by_vendor_formula(trade) == Decimal(record["paid"])

    # Cancelled stockouts are skipped on purpose, each with its reason; the mapping refuses them, so a
    # scheme that did read them would dead-letter them rather than push a guessed status.
    skipped: dict[str, str] = {}
    for record in cancelled:
        with pytest.raises(MappingError) as refusal:
            reference(record)
        assert refusal.value.field == "trade_status" and refusal.value.key == record["stockout_no"]
        reason = f"cancelled stockout, not read by the scheme: {refusal.value.message}"
        skipped[record["stockout_no"]] = reason

    # Pushed as the scheme pushes (batches of 50), in strict mode: one bad trade would fail its call.
    target = ends.definition.target
    pusher = ends.connector(target.connection)
    for start in range(0, len(result.records), 50):
        batch = result.records[start : start + 50]
        outcomes = await pusher.push(target.operation, batch, {**target.params, "switch": 1})
        rejected = [(trade["tid"], o.error) for trade, o in zip(batch, outcomes, strict=True) if not o.ok]
        assert rejected == []

    pushed = ends.target.app[wdt_sim.STATE_KEY].pushed
    by_stockout = {
        record["stockout_no"]: trade for record, trade in zip(enriched, result.records, strict=True)
    }
    assert set(pushed) == {trade["tid"] for trade in by_stockout.values()}
    assert len(pushed) == len(read)  # one trade per stockout: no tid was pushed twice
    for record in enriched:
        trade = by_stockout[record["stockout_no"]]
        stored = pushed[trade["tid"]]
        assert stored.shop_no == record["shop_no"]
        assert stored.trade["paid"] == trade["paid"]
        assert [line["oid"] for line in stored.trade["order_list"]] == [
            line["oid"] for line in trade["order_list"]
        ]
    # Every seeded stockout is accounted for: pushed, or skipped with its reason.
    assert set(by_stockout) | set(skipped) == set(seeded) and not set(by_stockout) & set(skipped)
