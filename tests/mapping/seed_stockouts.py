"""Generated Wangdiantong stockout records (seed-scheme.md's source shape) with the edge cases that matter."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.mapping import load_spec

SHIPPED = ("95", "105", "110", "113")
CARRIERS = (
    ("中通快递", "zhongtong"),
    ("圆通速递", "yuantong"),
    ("顺丰速运", "shunfeng"),
    ("韵达快递", "yunda"),
)
PLACES = (("浙江省", "杭州市", "西湖区"), ("广东省", "深圳市", "南山区"), ("上海", "上海市", "浦东新区"))

REFERENCE = Path(__file__).parents[2] / "gateway/schemes/templates/stockout_to_trade_push.yaml"
# Every header field of seed-scheme.md's source table, as the reference spec declares them; the ones
# filled below get real values, the rest the vendor's usual empty text.
HEADER_FIELDS = [
    name
    for name in load_spec(REFERENCE).source_fields or {}
    if "." not in name and name not in ("details_list", "kuaidi100Data")
]


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


def _line(rng: random.Random, stockout_no: str, tid: str, rec_id: int) -> dict[str, Any]:
    count = Decimal(rng.randint(1, 5))
    price = Decimal(rng.randint(100, 99_999)) / 100
    discount = Decimal(rng.choice([0, 0, 0, rng.randint(1, 500)])) / 100
    gift = rng.random() < 0.1
    if gift:
        price, discount = Decimal(0), Decimal(0)
    share = price * count - discount - Decimal(rng.choice([0, 0, rng.randint(0, 300)])) / 100
    share = max(share, Decimal(0))
    platform_goods = rng.random() < 0.7
    spec_no = f"SKU{rng.randint(1, 999):04d}" if rng.random() < 0.9 else ""
    return {
        "rec_id": str(rec_id),
        "src_oid": f"{tid}-{rec_id}" if tid and not gift and rng.random() < 0.85 else "",
        "src_tid": tid,
        "spec_no": spec_no,
        "goods_no": f"G{rng.randint(1, 300):04d}",
        "goods_name": rng.choice(["纯棉T恤", "保温杯", "蓝牙耳机", "帆布包"]),
        "spec_name": rng.choice(["红色 L", "500ml", "黑色", ""]),
        "barcode": f"69{rng.randint(10**10, 10**11 - 1)}",
        "goods_count": _money(count),
        "sell_price": _money(price),
        "share_amount": "" if rng.random() < 0.05 else _money(share),
        "discount": _money(discount),
        "gift_type": "1" if gift else "0",
        "refund_status": rng.choice(["0", "0", "0", "0", "2", "5"]),
        "goods_id": str(rng.randint(10**9, 10**10)) if platform_goods else rng.choice(["", "0"]),
        "spec_id": str(rng.randint(10**9, 10**10)) if platform_goods else "0",
        "remark": rng.choice(["", "", "加急"]),
    }


def stockout(rng: random.Random, number: int, lines: int | None = None) -> dict[str, Any]:
    """One stockout with `lines` detail lines (1-10 at random when not given)."""
    record: dict[str, Any] = dict.fromkeys(HEADER_FIELDS, "")
    stockout_no = f"CK{20260301000000 + number}"
    tids = [f"{rng.randint(10**15, 10**16 - 1)}" for _ in range(rng.choice([1, 1, 1, 2]))]
    manual = rng.random() < 0.08
    src_tids = "" if manual else ",".join(tids)
    ordered = datetime(2026, 3, 1, 8) + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
    details = [
        _line(rng, stockout_no, tids[0] if not manual else "", i + 1)
        for i in range(lines or rng.randint(1, 10))
    ]
    post = Decimal(rng.choice([0, 0, 600, 1000, 1200])) / 100
    goods = sum((Decimal(d["sell_price"]) * Decimal(d["goods_count"]) for d in details), Decimal(0))
    shared = sum((Decimal(d["share_amount"] or 0) for d in details), Decimal(0))
    cod = rng.random() < 0.1
    carrier, com = rng.choice(CARRIERS)
    province, city, district = rng.choice(PLACES)
    logistics_no = f"{com[:2].upper()}{rng.randint(10**11, 10**12 - 1)}"
    modified = (ordered + timedelta(hours=21)).strftime("%Y-%m-%d %H:%M:%S")
    record.update(
        stockout_id=str(100000 + number),
        stockout_no=stockout_no,
        order_no=stockout_no,
        src_order_no=f"JY{20260301000000 + number}",
        src_tids=src_tids,
        trade_no=f"JY{20260301000000 + number}",
        status=rng.choice(SHIPPED),
        trade_status="95",
        refund_status="0",
        shop_no=rng.choice(["tmall01", "jd01", "dy01"]),
        shop_name="旗舰店",
        warehouse_no=rng.choice(["WH01", "WH02"]),
        warehouse_name="杭州仓",
        nick_name="" if rng.random() < 0.1 else f"buyer{rng.randint(1, 9999)}",
        customer_name=f"客户{rng.randint(1, 999)}",
        receiver_name=rng.choice(["张三", "李四", "王五"]),
        receiver_mobile=f"138{rng.randint(10**7, 10**8 - 1)}",
        receiver_telno="",
        receiver_province=province,
        receiver_city=city,
        receiver_district=district,
        receiver_address="文三路 100 号",
        receiver_zip="310000",
        receiver_area=f"{province} {city} {district}",
        logistics_name=carrier,
        logistics_no=logistics_no,
        logistics_type=rng.choice(["", "1", "4"]),
        invoice_type=rng.choice(["0", "0", "1", "2"]),
        invoice_title="",
        invoice_content="",
        buyer_message=rng.choice(["", "请尽快发货"]),
        cs_remark=rng.choice(["", "老客户"]),
        fenxiao_type=rng.choice(["", "0", "1"]),
        trade_time=ordered.strftime("%Y-%m-%d %H:%M:%S"),
        pay_time="0000-00-00 00:00:00"
        if cod
        else (ordered + timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S"),
        created=(ordered + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
        consign_time=(ordered + timedelta(hours=20)).strftime("%Y-%m-%d %H:%M:%S"),
        modified=modified,
        goods_count=_money(sum((Decimal(d["goods_count"]) for d in details), Decimal(0))),
        goods_type_count=str(len(details)),
        goods_total_amount=_money(goods),
        post_amount=_money(post),
        paid=_money(shared + post),
        receivable=_money(shared + post),
        cod_amount=_money(shared + post if cod else Decimal(0)),
        discount=_money(goods - shared),
        currency="CNY",
        weight="1.2000",
        platform_id="127",
        tid=tids[0],
        details_list=details,
        kuaidi100Data={
            "message": "ok",
            "nu": logistics_no,
            "ischeck": rng.choice(["0", "1"]),
            "com": com,
            "status": "200",
            "data": [{"time": modified, "ftime": modified, "context": "已揽收"}],
            "state": rng.choice(["0", "1", "3"]),
            "condition": "F00",
            "routeInfo": {"from": {"number": "CN330100", "name": "浙江,杭州市"}, "cur": None, "to": None},
            "isLoop": False,
            "tid": tids[0],
        },
    )
    return record


def stockouts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [stockout(rng, number) for number in range(count)]
