"""The reference scheme's mapping: generated stockouts become valid trade_push trades.

`paid` must agree with the lines by the vendor's own formula.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from gateway.connectors.simdata import CHINA_TZ, format_time
from gateway.connectors.wangdiantong.sign import sign
from gateway.connectors.wangdiantong.simulator import STATE_KEY, WdtSimulatorConfig, create_app
from gateway.mapping import Mapping, MappingError, compile_mapping
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
    assert "'5' is not in the value map" in result.errors[0].message
    assert "at most 40" in result.errors[1].message
    with pytest.raises(MappingError):
        reference(cancelled)


# --- against the Wangdiantong simulator over HTTP -------------------------------------------------------

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)
TARGET = WdtSimulatorConfig(seed_data=False, appkey="target-key", appsecret="target-secret")


class Erp:
    """A signed client of one simulated Wangdiantong account, speaking the vendor's form protocol."""

    def __init__(
        self, server: TestServer, session: aiohttp.ClientSession, config: WdtSimulatorConfig
    ) -> None:
        self.server, self.session, self.config = server, session, config

    async def call(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        form = {
            **params,
            "sid": self.config.sid,
            "appkey": self.config.appkey,
            "timestamp": str(int(time.time())),
        }
        form["sign"] = sign(form, self.config.appsecret)
        async with self.session.post(
            self.server.make_url(f"/openapi2/{endpoint}.php"), data=form
        ) as response:
            body: dict[str, Any] = await response.json()
            return body


@pytest.fixture(scope="module")
async def erps() -> AsyncIterator[tuple[Erp, Erp]]:
    servers = [
        TestServer(create_app(WdtSimulatorConfig(anchor=ANCHOR)), host="127.0.0.1"),
        TestServer(create_app(TARGET), host="127.0.0.1"),
    ]
    session = aiohttp.ClientSession()
    try:
        for server in servers:
            await server.start_server()
        yield Erp(servers[0], session, WdtSimulatorConfig(anchor=ANCHOR)), Erp(servers[1], session, TARGET)
    finally:
        await session.close()
        for server in servers:
            await server.close()


def trade_push_requests(trades: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What the mapping's comments promise a pusher does: lift shop_no and switch off the lines, leave out
    nulls, and send at most 50 trades (and 30 of one buyer) per call."""
    batches: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    for mapped in trades:
        first = mapped["order_list"][0]
        trade = {key: value for key, value in mapped.items() if value is not None and key != "order_list"}
        trade["order_list"] = [
            {k: v for k, v in line.items() if v is not None and k not in ("trade_list", "shop_no", "switch")}
            for line in mapped["order_list"]
        ]
        groups = batches.setdefault((first["shop_no"], first["switch"]), [[]])
        nick_count = sum(1 for other in groups[-1] if other.get("buyer_nick") == trade.get("buyer_nick"))
        if len(groups[-1]) == 50 or nick_count == 30:
            groups.append([])
        groups[-1].append(trade)
    return [
        {"shop_no": shop, "switch": switch, "trade_list": msgspec.json.encode(batch).decode()}
        for (shop, switch), groups in batches.items()
        for batch in groups
    ]


async def test_simulator_stockouts_map_to_trades_its_trade_push_accepts(
    reference: Mapping, erps: tuple[Erp, Erp]
) -> None:
    source, target = erps
    window = {"start_time": format_time(ANCHOR - timedelta(days=30)), "end_time": format_time(ANCHOR)}
    stockouts: list[dict[str, Any]] = []
    for page in range(3):
        body = await source.call(
            "stockout_order_query_trade", {**window, "page_no": str(page), "page_size": "100"}
        )
        assert body["code"] == 0, body
        stockouts.extend(body["stockout_list"])
    assert len(stockouts) == 300

    result = reference.many(stockouts)
    assert result.errors == []
    for record, trade in zip(stockouts, result.records, strict=True):
        assert Decimal(trade["paid"]) == paid_by_vendor_formula(trade) == Decimal(record["paid"])

    for request in trade_push_requests(result.records):
        body = await target.call("trade_push", request)
        assert body["code"] == 0, body["message"]  # strict mode (switch 1): one bad trade fails the call
    pushed = target.server.app[STATE_KEY].pushed
    assert set(pushed) == {trade["tid"] for trade in result.records}
    assert {tid: p.shop_no for tid, p in pushed.items()} == {
        trade["tid"]: record["shop_no"] for record, trade in zip(stockouts, result.records, strict=True)
    }
