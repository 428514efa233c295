"""The simulators' seed: deterministic, complete, realistic and internally consistent."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gateway.connectors import simdata
from gateway.connectors.simdata import CHINA_TZ, ZERO_DATETIME

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)

# The source record of the reference scheme (seed-scheme.md), less the kuaidi100Data enrichment.
_SOURCE_TABLE = """
bad_reason batch_no block_reason buyer_message calc_post_cost calc_weight checker_name checkouter_id
cod_amount consign_status consign_time consigner_id created cs_remark currency custom_type customer_id
customer_name customer_no delivery_term details_list discount ebill_status employee_no error_info
examiner_id examiner_name examiner_no fenxiao_nick fenxiao_type flag_id flag_name freeze_reason fullname
goods_count goods_total_amount goods_total_cost goods_type_count has_invoice id_card id_card_type
invoice_content invoice_id invoice_print_status invoice_title invoice_type is_allocated lock_id
logistics_code logistics_id logistics_name logistics_no logistics_print_status logistics_template_id
logistics_type md5_str modified nick_name note_count operator_id operator_name order_no order_type
order_type_name outer_no pack_score package_cost package_fee package_id packager_id packager_name
packager_no paid pay_time pick_error_count pick_score picker_id picker_name picker_no picklist_no
picklist_print_status picklist_seq platform_id pos_allocate_mode post_amount post_cost post_fee post_weight
pre_charge_time print_batch_no print_remark printer_id printer_name printer_no raw_goods_count reason_id
receivable receiver_address receiver_area receiver_city receiver_city_code receiver_country
receiver_district receiver_district_code receiver_dtb receiver_mobile receiver_name receiver_province
receiver_province_code receiver_ring receiver_telno receiver_zip refund_status remark reserve salesman_name
salesman_no sendbill_print_status sendbill_template_id shop_name shop_no shop_remark sorter_id src_order_id
src_order_no src_order_type src_tids src_trade_no status stock_check_time stockout_id stockout_no
stockout_reason stockout_receiver_dtb subtype tax tax_rate to_deliver_time trade_id trade_no trade_status
trade_time trade_type unknown_goods_amount warehouse_id warehouse_name warehouse_no warehouse_type
watcher_id weight wms_status tid
"""
SOURCE_FIELDS = _SOURCE_TABLE.split()

WAYBILL_FORMATS = {
    "zhongtong": r"7589\d{10}",
    "yuantong": r"YT\d{13}",
    "yunda": r"43\d{11}",
    "shentong": r"77\d{11}",
    "shunfeng": r"SF14\d{11}",
    "jtexpress": r"JT\d{13}",
    "jd": r"JDVA\d{11}",
    "ems": r"98\d{11}",
}
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
AMOUNT = re.compile(r"-?\d+\.\d{4}")


@pytest.fixture(scope="module")
def seed() -> simdata.SeedData:
    return simdata.generate_seed(simdata.DEFAULT_SEED, ANCHOR)


@pytest.fixture(scope="module")
def stockouts(seed: simdata.SeedData) -> list[dict[str, Any]]:
    return seed.stockouts


def dec(text: str) -> Decimal:
    return Decimal(text)


def test_the_same_seed_and_anchor_give_the_same_data(stockouts: list[dict[str, Any]]) -> None:
    assert simdata.generate_stockouts(simdata.DEFAULT_SEED, ANCHOR) == stockouts
    other = simdata.generate_stockouts(simdata.DEFAULT_SEED + 1, ANCHOR, count=50)
    assert [s["logistics_no"] for s in other] != [s["logistics_no"] for s in stockouts[:50]]


def test_count_is_honoured() -> None:
    assert len(simdata.generate_stockouts(1, ANCHOR, count=7)) == 7
    assert simdata.generate_stockouts(1, ANCHOR, count=0) == []


def test_every_stockout_has_every_source_field_as_strings(stockouts: list[dict[str, Any]]) -> None:
    assert len(stockouts) == simdata.DEFAULT_STOCKOUT_COUNT
    assert set(simdata.STOCKOUT_FIELDS) == set(SOURCE_FIELDS)
    for stockout in stockouts:
        assert set(SOURCE_FIELDS) <= set(stockout)
        assert all(isinstance(v, str) for k, v in stockout.items() if k != "details_list")
        assert 1 <= len(stockout["details_list"]) <= 5
        for line in stockout["details_list"]:
            assert all(isinstance(v, str) for v in line.values())


def test_statuses_are_mostly_shipped_with_a_few_of_each_other(stockouts: list[dict[str, Any]]) -> None:
    counts = Counter(s["status"] for s in stockouts)
    assert counts["95"] + counts["110"] >= 2000
    for status in ("5", "55", "113"):
        assert 10 <= counts[status] <= 200, (status, counts)
    assert set(counts) == {"5", "55", "95", "110", "113"}


def test_times_are_ordered_and_span_the_30_days_before_the_anchor(stockouts: list[dict[str, Any]]) -> None:
    start, end = simdata.format_time(ANCHOR - timedelta(days=30)), simdata.format_time(ANCHOR)
    for s in stockouts:
        for name in ("trade_time", "pay_time", "created", "modified"):
            assert DATETIME.fullmatch(s[name]) and start <= s[name] <= end, (name, s[name])
        assert s["trade_time"] <= s["pay_time"] <= s["created"] <= s["modified"]
        if s["status"] in simdata.SHIPPED_STATUSES:
            assert s["created"] <= s["consign_time"] <= s["modified"] <= end
            assert s["logistics_no"]
        else:
            assert s["consign_time"] == ZERO_DATETIME
            assert s["logistics_no"] == ""
    trade_times = sorted(s["trade_time"] for s in stockouts)
    assert trade_times[0] < simdata.format_time(ANCHOR - timedelta(days=29))
    assert trade_times[-1] > simdata.format_time(ANCHOR - timedelta(days=1))


def test_amounts_add_up(stockouts: list[dict[str, Any]]) -> None:
    for s in stockouts:
        lines = s["details_list"]
        assert all(AMOUNT.fullmatch(s[k]) for k in ("paid", "receivable", "discount", "post_amount"))
        goods_total = sum(dec(x["sell_price"]) * dec(x["goods_count"]) for x in lines)
        assert dec(s["goods_total_amount"]) == goods_total
        assert dec(s["discount"]) == sum(dec(x["discount"]) for x in lines)
        assert dec(s["receivable"]) == goods_total - dec(s["discount"]) + dec(s["post_amount"])
        assert dec(s["paid"]) == dec(s["receivable"])
        for x in lines:
            assert dec(x["share_amount"]) == dec(x["sell_price"]) * dec(x["goods_count"]) - dec(x["discount"])
            assert dec(x["share_amount"]) >= 0
        assert dec(s["goods_count"]) == sum(dec(x["goods_count"]) for x in lines)


def test_numbers_are_unique_and_look_like_the_vendors(stockouts: list[dict[str, Any]]) -> None:
    for name in ("stockout_no", "stockout_id", "src_order_no", "tid"):
        values = [s[name] for s in stockouts]
        assert len(set(values)) == len(values), name
    waybills = [s["logistics_no"] for s in stockouts if s["logistics_no"]]
    assert len(set(waybills)) == len(waybills)
    for s in stockouts:
        assert re.fullmatch(r"CK2026\d{9}", s["stockout_no"])
        assert re.fullmatch(r"JY2026\d{9}", s["src_order_no"]) and s["trade_no"] == s["src_order_no"]
        assert re.fullmatch(r"1[358]\d{9}", s["receiver_mobile"])
        if s["logistics_no"]:
            carrier = simdata.CARRIER_BY_LOGISTICS_CODE[s["logistics_code"]]
            assert re.fullmatch(WAYBILL_FORMATS[carrier.kuaidi100_com], s["logistics_no"])
            assert (s["logistics_name"], s["logistics_id"]) == (carrier.name, carrier.logistics_id)


def test_shops_warehouses_and_addresses_are_real_and_coherent(stockouts: list[dict[str, Any]]) -> None:
    assert {s["shop_no"] for s in stockouts} == {shop.shop_no for shop in simdata.SHOPS}
    assert {s["warehouse_name"] for s in stockouts} == {w.name for w in simdata.WAREHOUSES}
    for s in stockouts:
        city = simdata.CITY_BY_CODE[s["receiver_city_code"]]
        assert (s["receiver_province"], s["receiver_city"]) == (city.province, city.name)
        assert dict(city.districts)[s["receiver_district"]] == s["receiver_district_code"]
        assert s["receiver_province_code"] == city.province_code
        assert simdata.is_known_province(s["receiver_province"])
        assert simdata.SHOP_BY_NO[s["shop_no"]].shop_name == s["shop_name"]
        assert simdata.WAREHOUSE_BY_NO[s["warehouse_no"]].name == s["warehouse_name"]
        for line in s["details_list"]:
            spec = simdata.SPEC_BY_NO[line["spec_no"]]
            assert (line["goods_no"], line["goods_name"], line["barcode"]) == (
                spec.goods_no,
                spec.goods_name,
                spec.barcode,
            )
            assert line["src_tid"] in s["src_tids"].split(",")


def test_the_carrier_table_covers_both_vendors() -> None:
    coms = {c.kuaidi100_com for c in simdata.CARRIERS}
    assert coms == set(WAYBILL_FORMATS)
    assert {c.kuaidi100_com for c in simdata.CARRIERS if c.phone_required} == {"shunfeng", "zhongtong"}
    assert simdata.CARRIER_BY_KUAIDI100_COM["zhongtong"].name == "中通快递"


def test_each_stockout_has_its_trade_modified_a_little_before(seed: simdata.SeedData) -> None:
    assert len(seed.trades) == len(seed.stockouts)
    for stockout, trade in zip(seed.stockouts, seed.trades, strict=True):
        assert trade["trade_no"] == stockout["trade_no"]
        assert trade["src_tids"] == stockout["src_tids"]
        assert trade["logistics_no"] == stockout["logistics_no"]
        assert trade["modified"] <= stockout["modified"]
        assert simdata.parse_time(stockout["modified"]) - simdata.parse_time(trade["modified"]) <= timedelta(
            minutes=2
        )
        lines = trade["goods_list"]
        expected = sum(
            dec(x["price"]) * dec(x["num"])
            + dec(x["adjust_amount"])
            - dec(x["discount"])
            - dec(x["share_discount"])
            for x in lines
        )
        assert dec(trade["paid"]) == expected + dec(trade["post_amount"]) + dec(trade["other_amount"])


def test_the_anchor_defaults_to_the_current_hour() -> None:
    anchor = simdata.resolve_anchor(None)
    assert anchor.tzinfo is not None and anchor.utcoffset() == timedelta(hours=8)
    assert (anchor.minute, anchor.second, anchor.microsecond) == (0, 0, 0)
    naive = simdata.resolve_anchor(datetime(2026, 3, 1, 12, 30, 15, 999))
    assert naive == datetime(2026, 3, 1, 12, 30, 15, tzinfo=CHINA_TZ)
