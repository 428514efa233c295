"""The Wangdiantong simulator over real HTTP: signing, limits, paging, filters and trade_push validation."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from gateway.connectors import simdata
from gateway.connectors.simdata import CHINA_TZ
from gateway.connectors.wangdiantong.sign import sign
from gateway.connectors.wangdiantong.simulator import (
    CODE_INVALID_PARAMETER,
    CODE_NO_TIME_RANGE,
    CODE_OK,
    CODE_RATE_LIMITED,
    CODE_SIGN_ERROR,
    CODE_TIMESTAMP_EXPIRED,
    CODE_TRADE_REJECTED,
    CODE_UNKNOWN_SELLER,
    DEFAULT_CREDENTIALS,
    RATE_LIMIT_MESSAGE,
    STATE_KEY,
    WdtSimulatorConfig,
    WdtState,
    create_app,
)

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)
SEEDED = WdtSimulatorConfig(anchor=ANCHOR)
SHIPPED_IN_WINDOW = {"95", "110"}


def fmt(moment: datetime) -> str:
    return simdata.format_time(moment)


class Wdt:
    """A signed client of one running simulator, the way a connector calls the vendor."""

    def __init__(
        self, server: TestServer, session: aiohttp.ClientSession, config: WdtSimulatorConfig
    ) -> None:
        self.server = server
        self.session = session
        self.config = config

    @property
    def state(self) -> WdtState:
        return self.server.app[STATE_KEY]

    async def call(
        self,
        endpoint: str,
        params: Mapping[str, str],
        *,
        timestamp: int | None = None,
        appsecret: str | None = None,
        appkey: str | None = None,
        after_signing: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        form = {
            **params,
            "sid": self.config.sid,
            "appkey": appkey or self.config.appkey,
            "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        }
        form["sign"] = sign(form, appsecret or self.config.appsecret)
        form.update(after_signing or {})
        async with self.session.post(self.server.make_url(f"/openapi2/{endpoint}.php"), data=form) as resp:
            assert resp.status == 200  # the vendor answers errors in the envelope, not with HTTP codes
            body: dict[str, Any] = await resp.json()
            return body

    async def stockouts(self, **params: str) -> dict[str, Any]:
        return await self.call("stockout_order_query_trade", params)

    async def push(
        self, trades: list[dict[str, Any]], *, shop_no: str = "tmall-001", switch: str = "1"
    ) -> dict:
        trade_list = msgspec.json.encode(trades).decode()
        return await self.call("trade_push", {"shop_no": shop_no, "switch": switch, "trade_list": trade_list})


async def _serve(config: WdtSimulatorConfig) -> AsyncIterator[Wdt]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Wdt(server, session, config)
    finally:
        await session.close()
        await server.close()


@pytest.fixture(scope="module")
async def wdt() -> AsyncIterator[Wdt]:
    async for client in _serve(SEEDED):
        yield client


@pytest.fixture(scope="module")
async def empty_erp() -> AsyncIterator[Wdt]:
    async for client in _serve(
        WdtSimulatorConfig(seed_data=False, appkey="push-key", appsecret="push-secret")
    ):
        yield client


@pytest.fixture(scope="module")
def seed() -> simdata.SeedData:
    return simdata.generate_seed(SEEDED.seed, ANCHOR, SEEDED.stockout_count)


def last_day() -> dict[str, str]:
    return {"start_time": fmt(ANCHOR - timedelta(days=1)), "end_time": fmt(ANCHOR)}


# --- signing and system parameters -------------------------------------------------------------------------


async def test_a_signed_call_is_accepted(wdt: Wdt) -> None:
    body = await wdt.stockouts(**last_day(), page_size="10")
    assert body["code"] == CODE_OK
    assert body["total_count"] > 0
    assert 0 < len(body["stockout_list"]) <= 10


async def test_a_wrong_sign_gets_the_vendor_envelope(wdt: Wdt) -> None:
    body = await wdt.call("stockout_order_query_trade", last_day(), appsecret="not-the-secret")
    assert body["code"] == CODE_SIGN_ERROR != 0
    assert "签名" in body["message"]
    assert "stockout_list" not in body


async def test_a_param_changed_after_signing_fails_the_sign(wdt: Wdt) -> None:
    body = await wdt.call("stockout_order_query_trade", last_day(), after_signing={"shop_no": "jd-001"})
    assert body["code"] == CODE_SIGN_ERROR


async def test_an_unknown_appkey_is_refused(wdt: Wdt) -> None:
    body = await wdt.call("stockout_order_query_trade", last_day(), appkey="someone-else")
    assert body["code"] == CODE_UNKNOWN_SELLER


@pytest.mark.parametrize("skew", [-301, 301, -3600])
async def test_a_timestamp_outside_five_minutes_is_refused(wdt: Wdt, skew: int) -> None:
    body = await wdt.call("stockout_order_query_trade", last_day(), timestamp=int(time.time()) + skew)
    assert body["code"] == CODE_TIMESTAMP_EXPIRED


async def test_a_timestamp_within_five_minutes_is_accepted(wdt: Wdt) -> None:
    body = await wdt.call("stockout_order_query_trade", last_day(), timestamp=int(time.time()) - 240)
    assert body["code"] == CODE_OK


async def test_the_rate_limit_answers_frequency_exceeded() -> None:
    async for limited in _serve(WdtSimulatorConfig(seed_data=False, qps=2)):
        params = {"src_tid": "nothing"}
        bodies = await asyncio.gather(*(limited.stockouts(**params) for _ in range(8)))
        refused = [body for body in bodies if body["message"] == RATE_LIMIT_MESSAGE]
        assert len(refused) == 6
        assert all(body["code"] == CODE_RATE_LIMITED for body in refused)
        await asyncio.sleep(1.05)
        assert (await limited.stockouts(**params))["code"] == CODE_OK


# --- stockout_order_query_trade -------------------------------------------------------------------


@pytest.mark.parametrize("page_size", ["101", "0", "-1", "ten"])
async def test_page_size_outside_1_to_100_is_an_invalid_parameter(wdt: Wdt, page_size: str) -> None:
    body = await wdt.stockouts(**last_day(), page_size=page_size)
    assert body["code"] == CODE_INVALID_PARAMETER


async def test_a_window_longer_than_30_days_is_rejected(wdt: Wdt) -> None:
    start = ANCHOR - timedelta(days=30, seconds=1)
    body = await wdt.stockouts(start_time=fmt(start), end_time=fmt(ANCHOR))
    assert body["code"] == CODE_INVALID_PARAMETER
    assert "30" in body["message"]


async def test_a_query_without_window_or_number_is_rejected(wdt: Wdt) -> None:
    assert (await wdt.stockouts(shop_no="tmall-001"))["code"] == CODE_NO_TIME_RANGE


async def test_a_malformed_time_is_rejected(wdt: Wdt) -> None:
    body = await wdt.stockouts(start_time="2026/03/01 00:00", end_time=fmt(ANCHOR))
    assert body["code"] == CODE_INVALID_PARAMETER


async def test_total_count_is_given_on_page_0_only(wdt: Wdt) -> None:
    first = await wdt.stockouts(**last_day(), page_no="0", page_size="5")
    second = await wdt.stockouts(**last_day(), page_no="1", page_size="5")
    assert first["total_count"] > 5
    assert second["total_count"] == 0
    assert len(second["stockout_list"]) == 5
    assert {s["stockout_no"] for s in first["stockout_list"]}.isdisjoint(
        s["stockout_no"] for s in second["stockout_list"]
    )


async def test_walking_every_page_of_30_days_returns_each_shipped_stockout_once(
    wdt: Wdt, seed: simdata.SeedData
) -> None:
    window = {"start_time": fmt(ANCHOR - timedelta(days=30)), "end_time": fmt(ANCHOR)}
    seen: list[dict[str, Any]] = []
    total = -1
    for page_no in itertools.count():
        body = await wdt.stockouts(**window, page_no=str(page_no), page_size="100")
        assert body["code"] == CODE_OK
        total = body["total_count"] if page_no == 0 else total
        if not body["stockout_list"]:
            break
        seen.extend(body["stockout_list"])
    numbers = [s["stockout_no"] for s in seen]
    expected = {s["stockout_no"] for s in seed.stockouts if s["status"] in SHIPPED_IN_WINDOW}
    assert len(numbers) == len(set(numbers)) == total >= 2000
    assert set(numbers) == expected
    order = [(s["consign_time"], int(s["stockout_id"])) for s in seen]
    assert order == sorted(order)


async def test_stockouts_filter_by_shop_and_warehouse(wdt: Wdt) -> None:
    body = await wdt.stockouts(**last_day(), shop_no="jd-001", warehouse_no="SHJD01")
    assert body["code"] == CODE_OK
    rows = body["stockout_list"]
    assert rows
    assert all(s["shop_no"] == "jd-001" and s["warehouse_no"] == "SHJD01" for s in rows)


async def test_stockouts_by_number_need_no_window(wdt: Wdt, seed: simdata.SeedData) -> None:
    target = next(s for s in seed.stockouts if s["status"] == "110")
    for key in ("stockout_no", "src_order_no", "src_tid"):
        value = target["tid"] if key == "src_tid" else target[key]
        body = await wdt.stockouts(**{key: value})
        assert body["code"] == CODE_OK, key
        assert [s["stockout_no"] for s in body["stockout_list"]] == [target["stockout_no"]]
        assert body["stockout_list"][0] == target


async def test_before_shipping_statuses_filter_on_modified(wdt: Wdt, seed: simdata.SeedData) -> None:
    approved = [s for s in seed.stockouts if s["status"] == "55"]
    latest = max(s["modified"] for s in approved)
    window = {"start_time": fmt(ANCHOR - timedelta(days=30)), "end_time": latest}
    body = await wdt.stockouts(**window, status="55")
    assert body["total_count"] == len(approved)
    assert all(
        s["consign_time"] == simdata.ZERO_DATETIME and s["logistics_no"] == "" for s in body["stockout_list"]
    )


async def test_is_by_modified_reads_the_modified_time(wdt: Wdt, seed: simdata.SeedData) -> None:
    start, end = ANCHOR - timedelta(days=10), ANCHOR - timedelta(days=9)
    window = {"start_time": fmt(start), "end_time": fmt(end)}
    by_modified = await wdt.stockouts(**window, is_by_modified="1")
    expected = {
        s["stockout_no"]
        for s in seed.stockouts
        if s["status"] in SHIPPED_IN_WINDOW and fmt(start) <= s["modified"] <= fmt(end)
    }
    assert {s["stockout_no"] for s in by_modified["stockout_list"]} == expected
    assert by_modified["total_count"] == len(expected)


async def test_an_unknown_status_is_an_invalid_parameter(wdt: Wdt) -> None:
    assert (await wdt.stockouts(**last_day(), status="96"))["code"] == CODE_INVALID_PARAMETER


# --- trade_query ----------------------------------------------------------------------------------


async def test_trade_query_rejects_a_window_over_60_minutes(wdt: Wdt) -> None:
    start = ANCHOR - timedelta(minutes=61)
    body = await wdt.call("trade_query", {"start_time": fmt(start), "end_time": fmt(ANCHOR)})
    assert body["code"] == CODE_INVALID_PARAMETER
    assert "trades" not in body


async def test_trade_query_returns_the_seeded_trades_modified_in_the_window(
    wdt: Wdt, seed: simdata.SeedData
) -> None:
    end = simdata.parse_time(seed.trades[1200]["modified"])
    start = end - timedelta(minutes=60)
    body = await wdt.call("trade_query", {"start_time": fmt(start), "end_time": fmt(end)})
    expected = [t["trade_no"] for t in seed.trades if fmt(start) <= t["modified"] <= fmt(end)]
    assert body["code"] == CODE_OK
    assert body["total_count"] == len(expected) > 0
    assert sorted(t["trade_no"] for t in body["trades"]) == sorted(expected)
    trade = body["trades"][0]
    assert trade["goods_list"] and {"src_oid", "spec_no", "num", "price", "share_discount"} <= set(
        trade["goods_list"][0]
    )


async def test_trade_query_finds_a_trade_by_logistics_no(wdt: Wdt, seed: simdata.SeedData) -> None:
    trade = next(t for t in seed.trades if t["logistics_no"])
    body = await wdt.call("trade_query", {"logistics_no": trade["logistics_no"]})
    assert [t["trade_no"] for t in body["trades"]] == [trade["trade_no"]]


# --- trade_push -----------------------------------------------------------------------------------


def valid_trade(tid: str | None = None, **changes: Any) -> dict[str, Any]:
    """A trade that passes every check: paid = (118-5-3.5) + (89-1.5) + 10 = 207.00."""
    tid = tid or f"T{uuid.uuid4().hex[:16]}"
    trade: dict[str, Any] = {
        "tid": tid,
        "trade_status": 30,
        "pay_status": "2",
        "delivery_term": 1,
        "trade_time": "2026-03-01 10:00:00",
        "pay_time": "2026-03-01 10:01:05",
        "buyer_nick": "tb_buyer_01",
        "receiver_name": "张伟",
        "receiver_province": "浙江省",
        "receiver_city": "杭州市",
        "receiver_district": "西湖区",
        "receiver_address": "文三路100号阳光花园3栋2单元501室",
        "receiver_mobile": "13812345678",
        "logistics_type": "-1",
        "post_amount": "10",
        "other_amount": "0",
        "paid": "207.00",
        "order_list": [
            {
                "oid": f"{tid}-1",
                "num": 2,
                "price": "59.00",
                "status": 30,
                "refund_status": 0,
                "goods_id": "1001",
                "goods_no": "TX1001",
                "spec_no": "TX1001-01",
                "goods_name": "纯棉短袖T恤",
                "spec_name": "白色 M",
                "adjust_amount": "0",
                "discount": "5",
                "share_discount": "3.5",
            },
            {
                "oid": f"{tid}-2",
                "num": "1",
                "price": "89",
                "status": "30",
                "refund_status": "0",
                "goods_id": "1009",
                "spec_no": "BWB1009-01",
                "share_discount": "1.5",
            },
        ],
    }
    trade.update(changes)
    return trade


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    return {e["tid"]: e["error"] for e in msgspec.json.decode(body["message"])}


async def test_a_pushed_trade_is_stored_and_then_returned_by_trade_query(empty_erp: Wdt) -> None:
    trade = valid_trade()
    body = await empty_erp.push([trade])
    assert body == {"code": CODE_OK, "message": "", "new_count": 1, "chg_count": 0}
    now = datetime.now(CHINA_TZ)
    window = {"start_time": fmt(now - timedelta(minutes=5)), "end_time": fmt(now + timedelta(minutes=1))}
    found = await empty_erp.call("trade_query", {**window, "src_tid": trade["tid"]})
    assert found["code"] == CODE_OK
    [row] = found["trades"]
    assert row["src_tids"] == trade["tid"]
    assert row["trade_no"].startswith("JY")
    assert row["shop_no"] == "tmall-001"
    assert row["paid"] == "207.0000"
    assert [line["src_oid"] for line in row["goods_list"]] == [f"{trade['tid']}-1", f"{trade['tid']}-2"]
    assert empty_erp.state.pushed[trade["tid"]].trade == trade
    assert empty_erp.state.trades[trade["tid"]] == row


async def test_pushing_the_same_trade_again_changes_nothing_and_a_change_counts_once(empty_erp: Wdt) -> None:
    trade = valid_trade()
    assert (await empty_erp.push([trade]))["new_count"] == 1
    again = await empty_erp.push([trade])
    assert (again["new_count"], again["chg_count"]) == (0, 0)
    changed = await empty_erp.push([{**trade, "receiver_address": "文二路8号"}])
    assert (changed["new_count"], changed["chg_count"]) == (0, 1)
    rows = (await empty_erp.call("trade_query", {"src_tid": trade["tid"]}))["trades"]
    assert [row["receiver_address"] for row in rows] == ["文二路8号"]


async def test_a_pushed_trade_has_the_fields_of_a_seeded_trade(
    empty_erp: Wdt, seed: simdata.SeedData
) -> None:
    trade = valid_trade()
    await empty_erp.push([trade])
    [row] = (await empty_erp.call("trade_query", {"src_tid": trade["tid"]}))["trades"]
    assert set(row) == set(seed.trades[0])
    assert set(row["goods_list"][0]) == set(seed.trades[0]["goods_list"][0])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trade_status": 60}, "trade_status"),
        ({"pay_status": "3"}, "pay_status"),
        ({"delivery_term": 4}, "delivery_term"),
        ({"seller_flag": 6}, "seller_flag"),
        ({"invoice_kind": "5"}, "invoice_kind"),
        ({"paid": "206.99"}, "paid"),
        ({"receiver_name": ""}, "receiver_name"),
        ({"receiver_province": "火星省"}, "receiver_province"),
        ({"receiver_mobile": ""}, "receiver_mobile"),
        ({"trade_time": "2026/03/01 10:00"}, "trade_time"),
        ({"tid": "T" * 41}, "tid"),
        ({"post_amount": "ten"}, "post_amount"),
        ({"order_list": []}, "order_list"),
    ],
)
async def test_an_invalid_trade_is_rejected_naming_the_field(
    empty_erp: Wdt, change: dict[str, Any], field: str
) -> None:
    trade = valid_trade(**change)
    body = await empty_erp.push([trade])
    assert body["code"] == CODE_TRADE_REJECTED
    assert body["new_count"] == 0
    [(tid, error)] = errors_of(body).items()
    assert tid == trade["tid"]
    assert error.startswith(f"{field}:") or f"; {field}:" in error, error
    assert trade["tid"] not in empty_erp.state.pushed


@pytest.mark.parametrize(
    ("line_change", "field"),
    [
        ({"goods_id": ""}, "order_list[0].goods_id"),
        ({"refund_status": 6}, "order_list[0].refund_status"),
        ({"num": 0}, "order_list[0].num"),
        ({"goods_no": "", "spec_no": ""}, "order_list[0].spec_no"),
        ({"oid": None}, "order_list[0].oid"),
    ],
)
async def test_an_invalid_order_line_is_rejected_naming_it(
    empty_erp: Wdt, line_change: dict[str, Any], field: str
) -> None:
    trade = valid_trade()
    trade["order_list"][0].update(line_change)
    body = await empty_erp.push([trade])
    assert body["code"] == CODE_TRADE_REJECTED
    assert field in errors_of(body)[trade["tid"]]


async def test_strict_mode_stores_nothing_when_one_trade_is_invalid(empty_erp: Wdt) -> None:
    good, bad = valid_trade(), valid_trade(trade_status=60)
    body = await empty_erp.push([good, bad], switch="1")
    assert body["code"] == CODE_TRADE_REJECTED
    assert (body["new_count"], body["chg_count"]) == (0, 0)
    assert list(errors_of(body)) == [bad["tid"]]
    assert good["tid"] not in empty_erp.state.pushed


async def test_lenient_mode_stores_the_valid_trades_and_reports_the_rest(empty_erp: Wdt) -> None:
    good, bad = valid_trade(), valid_trade(paid="1.00")
    body = await empty_erp.push([good, bad], switch="0")
    assert body["code"] == CODE_TRADE_REJECTED
    assert body["new_count"] == 1
    assert list(errors_of(body)) == [bad["tid"]]
    assert good["tid"] in empty_erp.state.pushed
    assert bad["tid"] not in empty_erp.state.pushed


async def test_more_than_50_trades_in_one_push_are_refused(empty_erp: Wdt) -> None:
    body = await empty_erp.push([valid_trade() for _ in range(51)])
    assert body["code"] == CODE_INVALID_PARAMETER
    assert "50" in body["message"]


async def test_a_push_to_an_unknown_shop_is_refused(empty_erp: Wdt) -> None:
    body = await empty_erp.push([valid_trade()], shop_no="no-such-shop")
    assert body["code"] == CODE_UNKNOWN_SELLER


async def test_an_oid_of_another_trade_is_rejected(empty_erp: Wdt) -> None:
    first = valid_trade()
    await empty_erp.push([first])
    second = valid_trade()
    second["order_list"][0]["oid"] = first["order_list"][0]["oid"]
    body = await empty_erp.push([second])
    assert "order_list[0].oid" in errors_of(body)[second["tid"]]


async def test_seeded_stockouts_pushed_as_trades_pass_validation(
    empty_erp: Wdt, seed: simdata.SeedData
) -> None:
    """The seed's amounts obey trade_push's paid arithmetic, so the reference scheme can run on it."""
    stockouts = [s for s in seed.stockouts if s["status"] == "95" and "," not in s["src_tids"]][:50]
    trades = [
        {
            "tid": s["tid"],
            "trade_status": 50,
            "pay_status": 2,
            "delivery_term": s["delivery_term"],
            "trade_time": s["trade_time"],
            "pay_time": s["pay_time"],
            "buyer_nick": s["nick_name"],
            **{key: s[key] for key in s if key.startswith("receiver_") and not key.endswith("_code")},
            "post_amount": s["post_amount"],
            "paid": s["paid"],
            "order_list": [
                {
                    "oid": line["src_oid"],
                    "num": line["goods_count"],
                    "price": line["sell_price"],
                    "discount": line["discount"],
                    "status": 50,
                    "refund_status": 0,
                    "goods_id": line["goods_id"],
                    "spec_no": line["spec_no"],
                }
                for line in s["details_list"]
            ],
        }
        for s in stockouts
    ]
    body = await empty_erp.push(trades, shop_no="jd-001")
    assert body["code"] == CODE_OK, body["message"]
    assert body["new_count"] == 50


async def test_an_empty_erp_has_no_stockouts(empty_erp: Wdt) -> None:
    window = {"start_time": fmt(ANCHOR - timedelta(days=30)), "end_time": fmt(ANCHOR)}
    body = await empty_erp.stockouts(**window)
    assert (body["code"], body["total_count"], body["stockout_list"]) == (CODE_OK, 0, [])


def test_the_demo_configuration_uses_the_demo_credentials() -> None:
    config = WdtSimulatorConfig()
    assert (config.sid, config.appkey, config.appsecret) == (
        DEFAULT_CREDENTIALS["sid"],
        DEFAULT_CREDENTIALS["appkey"],
        DEFAULT_CREDENTIALS["appsecret"],
    )
    assert config.seed == simdata.DEFAULT_SEED
