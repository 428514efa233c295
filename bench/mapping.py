"""Mapping speed: the reference stockout -> trade_push spec, compiled, against the same mapping written by
hand, with glom and with jmespath, over the same generated seed-like records, in one run.

    .venv/bin/python bench/mapping.py [--records 100000] [--lines 10] [--chunk 5000]

Records are generated in chunks (164 source fields, `--lines` detail lines each) so 100,000 of them never
sit in memory at once; only the mapping is timed. Each approach maps every chunk, and the outputs of all
four are checked equal on a sample first, so every figure is for the same work. A second table maps the
same records with a pure restructuring (every field copied under a new name), where each approach's own
overhead shows without the decimal work that all four share in the reference mapping.

Two more rows bound the reference mapping from below: the same output from a hand-tuned function that checks
nothing (`tuned`), and the same again using a fact the spec cannot know (`tuned_share`, see _tuned).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, and bench/gateway_chain.py would shadow the gateway
# package; the project is installed, so it is imported from there instead.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import jmespath  # noqa: E402
from glom import A, Coalesce, S, glom  # noqa: E402
from jmespath import functions as jp  # noqa: E402

from gateway.mapping import compile_mapping, load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "gateway/schemes/templates/stockout_to_trade_push.yaml"
Record = dict[str, Any]

# -- seed-like records ---------------------------------------------------------------------------------

CARRIERS = ("中通快递", "圆通速递", "顺丰速运", "韵达快递")
COMS = {"中通快递": "zhongtong", "圆通速递": "yuantong", "顺丰速运": "shunfeng", "韵达快递": "yunda"}
START = datetime(2026, 3, 1, 8)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


class Generator:
    """Stockouts shaped like stockout_order_query_trade records with kuaidi100Data (seed-scheme.md)."""

    def __init__(self, seed: int, lines: int) -> None:
        self.rng = random.Random(seed)
        self.lines = lines
        spec = load_spec(REFERENCE)
        self.header = [
            n for n in spec.source_fields or {} if "." not in n and n not in ("details_list", "kuaidi100Data")
        ]
        self.prices = [_money(Decimal(self.rng.randint(100, 99_999)) / 100) for _ in range(500)]

    def line(self, tid: str, rec_id: int) -> Record:
        rng = self.rng
        count = rng.randint(1, 5)
        price = self.prices[rng.randrange(500)]
        discount = rng.choice(("0.0000", "0.0000", "1.5000"))
        share = (
            Decimal(price) * count
            - Decimal(discount)
            - rng.choice((Decimal(0), Decimal(0), Decimal("0.7300")))
        )
        platform = rng.random() < 0.7
        return {
            "rec_id": str(rec_id),
            "src_oid": f"{tid}-{rec_id}" if rng.random() < 0.9 else "",
            "src_tid": tid,
            "spec_no": f"SKU{rng.randint(1, 999):04d}",
            "goods_no": f"G{rng.randint(1, 300):04d}",
            "goods_name": "纯棉T恤",
            "spec_name": "红色 L",
            "barcode": f"69{rng.randint(10**10, 10**11 - 1)}",
            "goods_count": f"{count}.0000",
            "sell_price": price,
            "share_amount": _money(max(share, Decimal(0))),
            "discount": discount,
            "gift_type": "0",
            "refund_status": "0",
            "goods_id": str(rng.randint(10**9, 10**10)) if platform else "0",
            "spec_id": str(rng.randint(10**9, 10**10)) if platform else "0",
            "remark": "",
        }

    def stockout(self, number: int) -> Record:
        rng = self.rng
        record: Record = dict.fromkeys(self.header, "")
        tid = str(rng.randint(10**15, 10**16 - 1))
        details = [self.line(tid, i + 1) for i in range(self.lines)]
        ordered = START + timedelta(seconds=rng.randint(0, 86400 * 20))
        post = rng.choice(("0.0000", "6.0000", "12.0000"))
        cod = rng.random() < 0.1
        paid = sum((Decimal(d["share_amount"]) for d in details), Decimal(post))
        carrier = rng.choice(CARRIERS)
        record.update(
            stockout_id=str(100000 + number),
            stockout_no=f"CK{20260301000000 + number}",
            src_order_no=f"JY{20260301000000 + number}",
            src_tids=tid if rng.random() < 0.95 else "",
            status=rng.choice(("95", "95", "110", "113")),
            shop_no=rng.choice(("tmall01", "jd01")),
            warehouse_no="WH01",
            nick_name=f"buyer{rng.randint(1, 9999)}",
            receiver_name="张三",
            receiver_mobile=f"138{rng.randint(10**7, 10**8 - 1)}",
            receiver_province="浙江省",
            receiver_city="杭州市",
            receiver_district="西湖区",
            receiver_address="文三路 100 号",
            logistics_name=carrier,
            logistics_no=f"ZT{rng.randint(10**11, 10**12 - 1)}",
            logistics_type="1",
            invoice_type="0",
            trade_time=ordered.strftime("%Y-%m-%d %H:%M:%S"),
            pay_time="0000-00-00 00:00:00"
            if cod
            else (ordered + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S"),
            created=(ordered + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
            post_amount=post,
            paid=_money(paid),
            cod_amount=_money(paid) if cod else "0.0000",
            details_list=details,
            kuaidi100Data={
                "message": "ok",
                "nu": record["logistics_no"],
                "ischeck": "0",
                "com": COMS[carrier],
                "status": "200",
                "data": [],
                "state": "0",
                "condition": "F00",
                "routeInfo": {},
                "isLoop": False,
                "tid": tid,
            },
        )
        return record


# -- the same mapping, written by hand -----------------------------------------------------------------

Q4 = Decimal("0.0001")
ZERO = Decimal(0)
TRADE_STATUS = {"55": "30", "95": "50", "105": "50", "110": "70", "113": "50"}
INVOICE_KIND = {"0": "0", "1": "1", "2": "4"}
REFUND = {"0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5"}
ZERO_DATES = ("", "0000-00-00 00:00:00")
TABLES: dict[str, dict[str, str]] = {"shops": {}, "warehouses": {}}


def dec(value: Any) -> Decimal:
    return ZERO if value is None or value == "" else Decimal(value)


def money(value: Any) -> str:
    return str(dec(value).quantize(Q4, ROUND_HALF_UP))


def vendor_time(*values: Any) -> str | None:
    for value in values:
        if value not in ZERO_DATES and value is not None:
            return datetime.fromisoformat(value).isoformat(" ")[:19]
    return None


def trade_status(status: Any) -> str:
    try:
        return TRADE_STATUS[str(status)]
    except KeyError:
        raise ValueError(f"unknown stockout status {status!r}") from None


def first_tid(src_tids: Any, src_order_no: Any) -> str:
    tid = ([t.strip() for t in src_tids.split(",") if t.strip()] or [None])[0] if src_tids else src_order_no
    if not tid or len(tid) > 40:
        raise ValueError(f"tid {tid!r} is missing or longer than 40")
    return tid


def line_adjust(price: Any, count: Any, discount: Any, share: Any) -> str:
    """A line's adjust_amount alone, for glom and jmespath, which map one field at a time."""
    if share == "":
        return "0.0000"
    return str(max(dec(share) - (dec(price) * dec(count) - dec(discount)), ZERO).quantize(Q4, ROUND_HALF_UP))


def line_share_discount(price: Any, count: Any, discount: Any, share: Any) -> str:
    """A line's share_discount alone (see line_adjust)."""
    if share == "":
        return "0.0000"
    return str(max(dec(price) * dec(count) - dec(discount) - dec(share), ZERO).quantize(Q4, ROUND_HALF_UP))


def hand_line(d: Record, stockout_no: str, status: str, shop_no: str) -> Record:
    price, count, discount = dec(d.get("sell_price")), dec(d.get("goods_count")), dec(d.get("discount"))
    share = d.get("share_amount")
    gross = price * count - discount
    adjust = max(dec(share) - gross, ZERO) if share != "" else ZERO
    share_discount = max(gross - dec(share), ZERO) if share != "" else ZERO
    goods_id, spec_id = d.get("goods_id"), d.get("spec_id")
    spec_no = d.get("spec_no") or d.get("goods_no")
    if not spec_no:
        raise ValueError("spec_no and goods_no are both empty")
    return {
        "oid": d.get("src_oid") or f"{stockout_no}-{d.get('rec_id')}",
        "num": str(count.quantize(Q4, ROUND_HALF_UP)),
        "price": str(price.quantize(Q4, ROUND_HALF_UP)),
        "status": status,
        "refund_status": REFUND[d.get("refund_status") or "0"],
        "goods_id": goods_id if goods_id not in ("", "0") else d.get("goods_no"),
        "spec_id": spec_id if spec_id not in ("", "0") else "",
        "goods_no": d.get("goods_no") or "",
        "spec_no": spec_no,
        "goods_name": d.get("goods_name") or "",
        "spec_name": d.get("spec_name") or "",
        "adjust_amount": str(adjust.quantize(Q4, ROUND_HALF_UP)),
        "discount": str(discount.quantize(Q4, ROUND_HALF_UP)),
        "share_discount": str(share_discount.quantize(Q4, ROUND_HALF_UP)),
        "remark": d.get("remark") or "",
        "cid": "",
        "trade_list": None,
        "shop_no": TABLES["shops"].get(shop_no, shop_no),
        "switch": "1",
    }


def paid_of(lines: list[Record], post_amount: str, other_amount: str) -> str:
    total = sum(
        (
            Decimal(x["price"]) * Decimal(x["num"])
            + Decimal(x["adjust_amount"])
            - Decimal(x["discount"])
            - Decimal(x["share_discount"])
            for x in lines
        ),
        ZERO,
    )
    return str((total + Decimal(post_amount) + Decimal(other_amount)).quantize(Q4, ROUND_HALF_UP))


def by_hand(r: Record) -> Record:
    status = trade_status(r.get("status"))
    stockout_no = r.get("stockout_no") or ""
    lines = [hand_line(d, stockout_no, status, r.get("shop_no") or "") for d in r.get("details_list") or ()]
    post_amount = money(r.get("post_amount"))
    warehouse = r.get("warehouse_no")
    return {
        "tid": first_tid(r.get("src_tids"), r.get("src_order_no")),
        "trade_status": status,
        "pay_status": "2",
        "delivery_term": "2" if dec(r.get("cod_amount")) > 0 else "1",
        "trade_time": vendor_time(r.get("trade_time"), r.get("created")),
        "pay_time": vendor_time(r.get("pay_time"), r.get("trade_time")) or "0000-00-00 00:00:00",
        "fenxiao_type": r.get("fenxiao_type") or "0",
        "purchase_id": "",
        "fenxiao_nick": r.get("fenxiao_nick") or "",
        "buyer_nick": r.get("nick_name") or r.get("customer_name") or "",
        "buyer_email": "",
        "pay_id": "",
        "pay_account": "",
        "receiver_name": r.get("receiver_name") or "",
        "receiver_address": r.get("receiver_address") or "",
        "receiver_province": r.get("receiver_province") or "",
        "receiver_city": r.get("receiver_city") or "",
        "receiver_district": r.get("receiver_district") or "",
        "receiver_mobile": r.get("receiver_mobile") or "",
        "receiver_telno": r.get("receiver_telno") or "",
        "receiver_zip": r.get("receiver_zip") or "",
        "logistics_type": r.get("logistics_type") or "-1",
        "invoice_kind": INVOICE_KIND.get(r.get("invoice_type") or "", "0"),
        "invoice_title": r.get("invoice_title") or "",
        "invoice_content": r.get("invoice_content") or "",
        "remark_flag": "0",
        "buyer_message": r.get("buyer_message") or "",
        "seller_memo": r.get("cs_remark") or "",
        "seller_flag": "0",
        "post_amount": post_amount,
        "cod_amount": money(r.get("cod_amount")),
        "ext_cod_fee": "0.0000",
        "other_amount": "0.0000",
        "paid": paid_of(lines, post_amount, "0.0000"),
        "is_auto_wms": None,
        "warehouse_no": TABLES["warehouses"].get(warehouse, warehouse) if warehouse is not None else "",
        "order_list": lines,
    }


# -- the same mapping in glom: paths, fallbacks and structure in glom, values through the same helpers ---


def _or(default: Any) -> Callable[[Any], Any]:
    return lambda value: value or default


def _glom_spec() -> dict[str, Any]:
    text = lambda path, default="": (Coalesce(path, default=None), _or(default))  # noqa: E731
    # What a line's amounts are worked out from, as the helpers' keyword arguments.
    amounts = {
        "price": Coalesce("sell_price", default=None),
        "count": Coalesce("goods_count", default=None),
        "discount": Coalesce("discount", default=None),
        "share": Coalesce("share_amount", default=None),
    }
    line = {
        "oid": (
            {
                "src": Coalesce("src_oid", default=""),
                "no": S.top["stockout_no"],
                "rec": Coalesce("rec_id", default=""),
            },
            lambda p: p["src"] or f"{p['no']}-{p['rec']}",
        ),
        "num": (Coalesce("goods_count", default=None), money),
        "price": (Coalesce("sell_price", default=None), money),
        "status": (S.top["status"], trade_status),
        "refund_status": (Coalesce("refund_status", default=""), lambda v: REFUND[v or "0"]),
        "goods_id": (
            {"id": Coalesce("goods_id", default=""), "no": Coalesce("goods_no", default=None)},
            lambda p: p["id"] if p["id"] not in ("", "0") else p["no"],
        ),
        "spec_id": (Coalesce("spec_id", default=""), lambda v: v if v not in ("", "0") else ""),
        "goods_no": text("goods_no"),
        "spec_no": Coalesce("spec_no", "goods_no", skip=("", None)),
        "goods_name": text("goods_name"),
        "spec_name": text("spec_name"),
        "adjust_amount": (amounts, lambda p: line_adjust(**p)),
        "discount": (Coalesce("discount", default=None), money),
        "share_discount": (amounts, lambda p: line_share_discount(**p)),
        "remark": text("remark"),
        "cid": lambda _: "",
        "trade_list": lambda _: None,
        "shop_no": (S.top["shop_no"], lambda v: TABLES["shops"].get(v, v)),
        "switch": lambda _: "1",
    }
    return {
        "tid": (
            {"t": Coalesce("src_tids", default=""), "o": Coalesce("src_order_no", default="")},
            lambda p: first_tid(p["t"], p["o"]),
        ),
        "trade_status": (Coalesce("status", default=None), trade_status),
        "pay_status": lambda _: "2",
        "delivery_term": (Coalesce("cod_amount", default=None), lambda v: "2" if dec(v) > 0 else "1"),
        "trade_time": (
            {"a": Coalesce("trade_time", default=None), "b": Coalesce("created", default=None)},
            lambda p: vendor_time(p["a"], p["b"]),
        ),
        "pay_time": (
            {"a": Coalesce("pay_time", default=None), "b": Coalesce("trade_time", default=None)},
            lambda p: vendor_time(p["a"], p["b"]) or "0000-00-00 00:00:00",
        ),
        "fenxiao_type": text("fenxiao_type", "0"),
        "purchase_id": lambda _: "",
        "fenxiao_nick": text("fenxiao_nick"),
        "buyer_nick": (Coalesce("nick_name", "customer_name", skip=("", None), default=""), _or("")),
        "buyer_email": lambda _: "",
        "pay_id": lambda _: "",
        "pay_account": lambda _: "",
        **{
            name: text(name)
            for name in (
                "receiver_name",
                "receiver_address",
                "receiver_province",
                "receiver_city",
                "receiver_district",
                "receiver_mobile",
                "receiver_telno",
                "receiver_zip",
            )
        },
        "logistics_type": text("logistics_type", "-1"),
        "invoice_kind": (Coalesce("invoice_type", default=""), lambda v: INVOICE_KIND.get(v or "", "0")),
        "invoice_title": text("invoice_title"),
        "invoice_content": text("invoice_content"),
        "remark_flag": lambda _: "0",
        "buyer_message": text("buyer_message"),
        "seller_memo": text("cs_remark"),
        "seller_flag": lambda _: "0",
        "post_amount": (Coalesce("post_amount", default=None), money),
        "cod_amount": (Coalesce("cod_amount", default=None), money),
        "ext_cod_fee": lambda _: "0.0000",
        "other_amount": lambda _: "0.0000",
        "paid": lambda _: None,  # filled from the mapped lines below, as the vendor computes it
        "is_auto_wms": lambda _: None,
        "warehouse_no": (Coalesce("warehouse_no", default=""), lambda v: TABLES["warehouses"].get(v, v)),
        "order_list": (A.top, Coalesce("details_list", default=[]), [line]),
    }


GLOM_SPEC = _glom_spec()


def with_glom(record: Record) -> Record:
    out: Record = glom(record, GLOM_SPEC)
    out["paid"] = paid_of(out["order_list"], out["post_amount"], out["other_amount"])
    return out


# -- the same mapping in jmespath: selection and structure in one compiled expression ------------------


class Helpers(jp.Functions):
    """The value conversions jmespath lacks, as jmespath custom functions over the same helpers."""

    @jp.signature({"types": []})
    def _func_money(self, value: Any) -> str:
        return money(value)

    @jp.signature({"types": []}, {"types": []})
    def _func_first_tid(self, tids: Any, order_no: Any) -> str:
        return first_tid(tids, order_no)

    @jp.signature({"types": []})
    def _func_trade_status(self, status: Any) -> str:
        return trade_status(status)

    @jp.signature({"types": []})
    def _func_delivery_term(self, cod: Any) -> str:
        return "2" if dec(cod) > 0 else "1"

    @jp.signature({"types": []}, {"types": []})
    def _func_vtime(self, first: Any, second: Any) -> str | None:
        return vendor_time(first, second)

    @jp.signature({"types": []}, {"types": []})
    def _func_lookup(self, table: Any, value: Any) -> Any:
        return TABLES[table].get(value, value)

    @jp.signature({"types": []}, {"types": []})
    def _func_get(self, table: Any, value: Any) -> Any:
        return {"invoice": INVOICE_KIND, "refund": REFUND}[table].get(value or "0", "0")

    @jp.signature({"types": []}, {"types": []})
    def _func_platform_id(self, value: Any, fallback: Any) -> Any:
        return value if value not in ("", "0") else fallback

    @jp.signature({"types": []}, {"types": []}, {"types": []}, {"types": []})
    def _func_adjust(self, price: Any, count: Any, discount: Any, share: Any) -> str:
        return line_adjust(price, count, discount, share)

    @jp.signature({"types": []}, {"types": []}, {"types": []}, {"types": []})
    def _func_share_discount(self, price: Any, count: Any, discount: Any, share: Any) -> str:
        return line_share_discount(price, count, discount, share)


_TEXT = (
    "fenxiao_nick",
    "receiver_name",
    "receiver_address",
    "receiver_province",
    "receiver_city",
    "receiver_district",
    "receiver_mobile",
    "receiver_telno",
    "receiver_zip",
    "invoice_title",
    "invoice_content",
    "buyer_message",
)
JMESPATH = jmespath.compile(
    "{"
    "tid: first_tid(src_tids, src_order_no), trade_status: trade_status(status), pay_status: '2', "
    "delivery_term: delivery_term(cod_amount), trade_time: vtime(trade_time, created), "
    "pay_time: vtime(pay_time, trade_time) || '0000-00-00 00:00:00', fenxiao_type: fenxiao_type || '0', "
    "purchase_id: '', fenxiao_nick: fenxiao_nick || '', buyer_nick: nick_name || customer_name || '', "
    "buyer_email: '', pay_id: '', pay_account: '', "
    + ", ".join(f"{name}: {name} || ''" for name in _TEXT[1:9])
    + ", logistics_type: logistics_type || '-1', invoice_kind: get('invoice', invoice_type), "
    "invoice_title: invoice_title || '', invoice_content: invoice_content || '', remark_flag: '0', "
    "buyer_message: buyer_message || '', seller_memo: cs_remark || '', seller_flag: '0', "
    "post_amount: money(post_amount), cod_amount: money(cod_amount), ext_cod_fee: '0.0000', "
    "other_amount: '0.0000', paid: `null`, is_auto_wms: `null`, "
    "warehouse_no: lookup('warehouses', warehouse_no), "
    "order_list: details_list[*].{"
    "oid: src_oid || join('-', [_parent_stockout_no, rec_id]), num: money(goods_count), "
    "price: money(sell_price), status: _parent_status, refund_status: get('refund', refund_status), "
    "goods_id: platform_id(goods_id, goods_no), "
    "spec_id: platform_id(spec_id, ''), goods_no: goods_no || '', spec_no: spec_no || goods_no, "
    "goods_name: goods_name || '', spec_name: spec_name || '', "
    "adjust_amount: adjust(sell_price, goods_count, discount, share_amount), "
    "discount: money(discount), "
    "share_discount: share_discount(sell_price, goods_count, discount, share_amount), remark: remark || '', "
    "cid: '', trade_list: `null`, shop_no: _parent_shop_no, switch: '1'}"
    "}"
)
JMESPATH_OPTIONS = jmespath.Options(custom_functions=Helpers())


def with_jmespath(record: Record) -> Record:
    # jmespath 1.x has no variables, so a line cannot see its parent: the parent's values are copied
    # into each line before the search, the usual workaround.
    search = JMESPATH.search
    parent = {
        "_parent_stockout_no": record.get("stockout_no"),
        "_parent_status": trade_status(record.get("status")),
    }
    shop = TABLES["shops"].get(record.get("shop_no"), record.get("shop_no"))  # type: ignore[arg-type]
    lines = [{**d, **parent, "_parent_shop_no": shop} for d in record.get("details_list") or ()]
    out: Record = search({**record, "details_list": lines}, options=JMESPATH_OPTIONS)
    out["paid"] = paid_of(out["order_list"], out["post_amount"], out["other_amount"])
    return out


# -- the same mapping hand-tuned, without the checks: how fast this output can be built at all --------------
#
# Not a competitor: it reads the fields by position, trusts every value (no type, presence, length or
# zero-date checks, no error that names a field) and remembers conversions, so it bounds from below what
# any mapping of these records can cost in CPython. `tuned` does the vendor's arithmetic as the spec
# writes it (paid from the pushed lines); `tuned_share` also uses what the spec cannot know, that a line
# with share_amount totals exactly share_amount, so paid is the sum of share_amount plus post_amount.

_NUMBER: dict[str, Decimal] = {}
_TEXT4: dict[str, str] = {}
_LINE_READ = itemgetter(
    "src_oid", "rec_id", "goods_count", "sell_price", "refund_status", "goods_id", "goods_no", "spec_id",
    "spec_no", "goods_name", "spec_name", "share_amount", "discount", "remark",
)  # fmt: skip
_HEAD_READ = itemgetter(
    "src_tids", "src_order_no", "status", "cod_amount", "trade_time", "created", "pay_time", "fenxiao_type",
    "fenxiao_nick", "nick_name", "customer_name", "receiver_name", "receiver_address", "receiver_province",
    "receiver_city", "receiver_district", "receiver_mobile", "receiver_telno", "receiver_zip",
    "logistics_type", "invoice_type", "invoice_title", "invoice_content", "buyer_message", "cs_remark",
    "post_amount", "shop_no", "warehouse_no", "stockout_no", "details_list",
)  # fmt: skip
_LINE_TEMPLATE: Record = {
    **dict.fromkeys(("oid", "num", "price", "status", "refund_status", "goods_id", "spec_id", "goods_no")),
    **dict.fromkeys(("spec_no", "goods_name", "spec_name", "adjust_amount", "discount", "share_discount")),
    **{"remark": None, "cid": "", "trade_list": None, "shop_no": None, "switch": "1"},
}
Z4 = "0.0000"


def _number(text: str) -> Decimal:
    found = _NUMBER.get(text)
    if found is None:
        found = _NUMBER[text] = Decimal(text) if text else ZERO
    return found


def _text4(text: str) -> str:
    found = _TEXT4.get(text)
    if found is None:
        found = _TEXT4[text] = str(_number(text).quantize(Q4, ROUND_HALF_UP))
    return found


def _tuned(r: Record, by_share: bool) -> Record:
    (tids, order_no, status, cod, trade_time, created, pay_time, fenxiao_type, fenxiao_nick, nick, customer,
     name, address, province, city, district, mobile, telno, zip_code, logistics_type, invoice, title,
     content, message, memo, post, shop, warehouse, stockout_no, details) = _HEAD_READ(r)  # fmt: skip
    trade_status = TRADE_STATUS[status]
    shop_no = TABLES["shops"].get(shop, shop)
    lines = []
    total = ZERO
    for d in details:
        (src_oid, rec_id, count, price, refund, goods_id, goods_no, spec_id, spec_no, goods_name, spec_name,
         share, discount, remark) = _LINE_READ(d)  # fmt: skip
        gross = _number(price) * _number(count) - _number(discount)
        paid_line = Decimal(share) if share else gross
        over, under = paid_line - gross, gross - paid_line
        adjust = over.quantize(Q4, ROUND_HALF_UP) if over > ZERO else ZERO
        share_discount = under.quantize(Q4, ROUND_HALF_UP) if under > ZERO else ZERO
        if by_share:
            total += paid_line
        else:
            total += (
                _number(_text4(price)) * _number(_text4(count))
                + adjust
                - _number(_text4(discount))
                - share_discount
            )
        out = _LINE_TEMPLATE.copy()
        out["oid"] = src_oid or f"{stockout_no}-{rec_id}"
        out["num"] = _text4(count)
        out["price"] = _text4(price)
        out["status"] = trade_status
        out["refund_status"] = REFUND[refund or "0"]
        out["goods_id"] = goods_id if goods_id not in ("", "0") else goods_no
        out["spec_id"] = spec_id if spec_id not in ("", "0") else ""
        out["goods_no"] = goods_no
        out["spec_no"] = spec_no or goods_no
        out["goods_name"] = goods_name
        out["spec_name"] = spec_name
        out["adjust_amount"] = str(adjust) if adjust else Z4
        out["discount"] = _text4(discount)
        out["share_discount"] = str(share_discount) if share_discount else Z4
        out["remark"] = remark
        out["shop_no"] = shop_no
        lines.append(out)
    post_amount = _text4(post)
    return {
        "tid": tids.partition(",")[0].strip() if tids else order_no,
        "trade_status": trade_status,
        "pay_status": "2",
        "delivery_term": "2" if _number(cod) > 0 else "1",
        "trade_time": trade_time if trade_time not in ZERO_DATES else created,
        "pay_time": (pay_time if pay_time not in ZERO_DATES else trade_time) or "0000-00-00 00:00:00",
        "fenxiao_type": fenxiao_type or "0",
        "purchase_id": "",
        "fenxiao_nick": fenxiao_nick,
        "buyer_nick": nick or customer or "",
        "buyer_email": "",
        "pay_id": "",
        "pay_account": "",
        "receiver_name": name,
        "receiver_address": address,
        "receiver_province": province,
        "receiver_city": city,
        "receiver_district": district,
        "receiver_mobile": mobile,
        "receiver_telno": telno,
        "receiver_zip": zip_code,
        "logistics_type": logistics_type or "-1",
        "invoice_kind": INVOICE_KIND.get(invoice, "0"),
        "invoice_title": title,
        "invoice_content": content,
        "remark_flag": "0",
        "buyer_message": message,
        "seller_memo": memo,
        "seller_flag": "0",
        "post_amount": post_amount,
        "cod_amount": _text4(cod),
        "ext_cod_fee": Z4,
        "other_amount": Z4,
        "paid": str((total + _number(post_amount)).quantize(Q4, ROUND_HALF_UP)),
        "is_auto_wms": None,
        "warehouse_no": TABLES["warehouses"].get(warehouse, warehouse) if warehouse is not None else "",
        "order_list": lines,
    }


def tuned(record: Record) -> Record:
    return _tuned(record, by_share=False)


def tuned_share(record: Record) -> Record:
    return _tuned(record, by_share=True)


def timed(fn: Callable[[Record], Record], records: list[Record]) -> float:
    """Seconds to map `records`; the collector is off while timing, as timeit does, so that a full
    collection over the chunk in memory is not charged to whichever approach happens to trigger it."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for record in records:
            fn(record)
        return time.perf_counter() - started
    finally:
        gc.enable()


# -- a second workload: the same records, restructured only --------------------------------------------

LINE_FIELDS = ("rec_id", "src_oid", "src_tid", "spec_no", "goods_no", "goods_name", "spec_name", "barcode",
               "goods_count", "sell_price", "share_amount", "discount", "gift_type", "refund_status",
               "goods_id", "spec_id", "remark")  # fmt: skip


class Restructuring:
    """Every source field copied under a new name, lines included: no conversions, so what is measured is
    each approach's own cost of walking and building records (DESIGN.md's 150-field figures)."""

    def __init__(self, header: list[str]) -> None:
        self.pairs = [(f"x_{name}", name) for name in header]
        self.line_pairs = [(f"x_{name}", name) for name in LINE_FIELDS]
        spec = {
            "name": "restructure",
            "fields": {
                **dict(self.pairs),
                "lines": {"each": "details_list", "fields": dict(self.line_pairs)},
            },
        }
        self.compiled = compile_mapping(spec)
        self.glom_spec = {
            **{target: Coalesce(source, default=None) for target, source in self.pairs},
            "lines": (
                Coalesce("details_list", default=[]),
                [{target: Coalesce(source, default=None) for target, source in self.line_pairs}],
            ),
        }
        line = ", ".join(f"{target}: {source}" for target, source in self.line_pairs)
        header_fields = ", ".join(f"{target}: {source}" for target, source in self.pairs)
        self.jmespath = jmespath.compile(f"{{{header_fields}, lines: details_list[*].{{{line}}}}}")

    def by_hand(self, r: Record) -> Record:
        out = {target: r.get(source) for target, source in self.pairs}
        out["lines"] = [{t: d.get(s) for t, s in self.line_pairs} for d in r.get("details_list") or ()]
        return out

    def with_glom(self, r: Record) -> Record:
        out: Record = glom(r, self.glom_spec)
        return out

    def with_jmespath(self, r: Record) -> Record:
        out: Record = self.jmespath.search(r)
        return out

    def approaches(self) -> dict[str, Callable[[Record], Record]]:
        return {
            "compiled spec": self.compiled,
            "hand-written": self.by_hand,
            "glom": self.with_glom,
            "jmespath": self.with_jmespath,
        }


# -- the run ---------------------------------------------------------------------------------------------


def report(title: str, counts: dict[str, int], seconds: dict[str, float]) -> None:
    rate = {name: counts[name] / seconds[name] for name in counts}
    print(title)
    print(f"  {'approach':<20} {'records':>9} {'records/s':>11} {'µs/record':>10} {'compiled is':>13}")
    for name in counts:
        ratio = rate["compiled spec"] / rate[name]
        versus = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        print(
            f"  {name:<20} {counts[name]:>9,} {rate[name]:>11,.0f} {1e6 / rate[name]:>10.1f} "
            f"{'(baseline)' if name == 'compiled spec' else versus:>13}"
        )
    if "tuned, no checks" in rate:
        floor = rate["tuned, no checks"] / rate["jmespath"]
        print(
            f"  compiled vs jmespath: {rate['compiled spec'] / rate['jmespath']:.2f}x (aim: 15x); even the "
            f"unchecked tuned function, same arithmetic, is {floor:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=20260301)
    args = parser.parse_args()

    generator = Generator(args.seed, args.lines)
    restructuring = Restructuring(generator.header)
    workloads: dict[str, dict[str, Callable[[Record], Record]]] = {
        "reference": {
            "compiled spec": compile_mapping(REFERENCE, tables=TABLES),
            "hand-written": by_hand,
            "glom": with_glom,
            "jmespath": with_jmespath,
            "tuned, no checks": tuned,
            "tuned, paid=Σshare": tuned_share,
        },
        "restructuring": restructuring.approaches(),
    }
    sample = [generator.stockout(-i - 1) for i in range(200)]
    for workload, approaches in workloads.items():
        expected = [approaches["hand-written"](record) for record in sample]
        for name, fn in approaches.items():
            if [fn(record) for record in sample] != expected:
                raise SystemExit(f"{workload}: {name} does not give the same output as the others")

    # glom is ~100x slower than the rest; it maps a tenth of each chunk so the run stays in minutes.
    share = {"glom": 10}
    seconds = {(w, name): 0.0 for w, approaches in workloads.items() for name in approaches}
    counts = dict.fromkeys(seconds, 0)
    done = 0
    while done < args.records:
        size = min(args.chunk, args.records - done)
        chunk = [generator.stockout(done + i) for i in range(size)]
        # Each chunk starts with a different approach, so none is always first to touch fresh records.
        turn = done // args.chunk
        for workload, approaches in workloads.items():
            names = list(approaches)
            first = turn % len(names)
            for name in names[first:] + names[:first]:
                part = chunk[:: share.get(name, 1)]
                seconds[workload, name] += timed(approaches[name], part)
                counts[workload, name] += len(part)
        done += size

    fields = len(generator.header) + 2 + 11
    print(f"{args.records:,} generated stockouts: {fields} source fields, {args.lines} lines each")
    for workload, title in (
        (
            "reference",
            "the reference mapping, stockout -> trade_push trade (decimal arithmetic and conversions):",
        ),
        ("restructuring", "restructuring only, every field copied under a new name (no conversions):"),
    ):
        ran = workloads[workload]
        report(title, {n: counts[workload, n] for n in ran}, {n: seconds[workload, n] for n in ran})


if __name__ == "__main__":
    main()
