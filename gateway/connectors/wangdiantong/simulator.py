"""A Wangdiantong enterprise (openapi2) server that signs, limits, pages and answers as the vendor does.

Inferred, not documented (protocols.md §1 and §6): the codes and messages for an unknown sid, a stale
timestamp, a wrong sign, the rate limit and rejected trade_push trades (`CODE_*` below); the `{tid, error}`
JSON array in `message`; the mapping of pushed platform statuses to ERP trade statuses; the default page_size
(100); that the qyb edition pages like the Y edition; and that unset times read `0000-00-00 00:00:00`.
Stricter than the vendor on purpose: an `oid` already used by another tid is rejected (the vendor documents
oids as unique per sid but only fails later, with a quantity mismatch).
"""

from __future__ import annotations

import hmac
import math
import re
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final, TypedDict

import msgspec
from aiohttp import web

from gateway.connectors import simdata
from gateway.connectors.simdata import CHINA_TZ, DEFAULT_SEED, DEFAULT_STOCKOUT_COUNT, ZERO_DATETIME
from gateway.connectors.wangdiantong.sign import sign

__all__ = [
    "CODE_BUYER_NICK_LIMIT",
    "CODE_INVALID_PARAMETER",
    "CODE_NO_TIME_RANGE",
    "CODE_OK",
    "CODE_RATE_LIMITED",
    "CODE_SIGN_ERROR",
    "CODE_TIMESTAMP_EXPIRED",
    "CODE_TRADE_REJECTED",
    "CODE_UNKNOWN_SELLER",
    "DEFAULT_CREDENTIALS",
    "DEFAULT_SEED",
    "MAX_PAGE_SIZE",
    "MAX_PUSH_TRADES",
    "RATE_LIMIT_MESSAGE",
    "SIGN_ERROR_MESSAGE",
    "STATE_KEY",
    "PushedTrade",
    "WdtCredentials",
    "WdtSimulatorConfig",
    "WdtState",
    "create_app",
]

CODE_OK: Final = 0
CODE_BUYER_NICK_LIMIT: Final = 99  # documented (Y edition): more than 30 trades of one buyer_nick in a push
CODE_UNKNOWN_SELLER: Final = 1007  # documented: appkey disabled / shop does not exist
CODE_TIMESTAMP_EXPIRED: Final = 1010  # inferred
CODE_SIGN_ERROR: Final = 1040  # inferred
CODE_RATE_LIMITED: Final = 1050  # inferred; the message is what clients key on
CODE_INVALID_PARAMETER: Final = 2830  # documented
CODE_TRADE_REJECTED: Final = 2840  # inferred: trade_push trades failed validation, `message` lists them
CODE_NO_TIME_RANGE: Final = 2900  # documented: neither a time range nor an order number

RATE_LIMIT_MESSAGE: Final = "频率超限"
SIGN_ERROR_MESSAGE: Final = "签名错误"

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 100
MAX_STOCKOUT_WINDOW: Final = timedelta(days=30)
MAX_TRADE_WINDOW: Final = timedelta(minutes=60)
MAX_PUSH_TRADES: Final = 50
MAX_TRADES_PER_BUYER_NICK: Final = 30


class WdtCredentials(TypedDict):
    sid: str
    appkey: str
    appsecret: str


# The demo seller account; `WdtSimulatorConfig(**DEFAULT_CREDENTIALS, ...)` and connections use it.
DEFAULT_CREDENTIALS: Final[WdtCredentials] = {
    "sid": "unigate-demo",
    "appkey": "demo-appkey",
    "appsecret": "demo-appsecret",
}

STOCKOUT_STATUSES: Final = frozenset({"5", "55", "95", "105", "110", "113"})
# Without `status` the stockout query returns shipped and finished stockouts.
DEFAULT_STOCKOUT_STATUSES: Final = frozenset({simdata.STOCKOUT_SHIPPED, simdata.STOCKOUT_FINISHED})
PLATFORM_TRADE_STATUSES: Final = frozenset({"10", "20", "30", "40", "50", "70", "80", "90"})
# A pushed platform status becomes this ERP trade status (10 unpaid, 12 awaiting balance, 30 awaiting review,
# 5 cancelled) [inferred].
_ERP_STATUS_OF_PLATFORM: Final = {
    "10": "10",
    "20": "12",
    "30": "30",
    "40": "30",
    "50": "30",
    "70": "30",
    "80": "5",
    "90": "5",
}
_FLAGS: Final = frozenset("012345")
_REFUND_STATUSES: Final = frozenset("012345")
_INTEGER = re.compile(r"-?\d+")
_DIGITS = re.compile(r"\d+")
_CENT = Decimal("0.01")
_FOUR_PLACES = Decimal("0.0001")


class WdtSimulatorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated seller account; the defaults are the demo account."""

    sid: str = DEFAULT_CREDENTIALS["sid"]
    appkey: str = DEFAULT_CREDENTIALS["appkey"]
    appsecret: str = DEFAULT_CREDENTIALS["appsecret"]
    seed: int = DEFAULT_SEED
    anchor: datetime | None = None  # the seed's "now"; None = the current hour
    stockout_count: int = DEFAULT_STOCKOUT_COUNT
    seed_data: bool = True  # False = an empty ERP, e.g. a trade_push target
    qps: float = 0.0  # calls per second per appkey; 0 = unlimited
    timestamp_tolerance: float = 300.0  # seconds either side of the server clock

    def __post_init__(self) -> None:
        if self.stockout_count < 0:
            raise ValueError("stockout_count must be >= 0")
        if self.qps < 0:
            raise ValueError("qps must be >= 0 (0 = unlimited)")
        if self.timestamp_tolerance <= 0:
            raise ValueError("timestamp_tolerance must be > 0 seconds")


class _Rejected(Exception):
    """A request the vendor answers with a non-zero code (always HTTP 200)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


class _RateLimiter:
    """At most `qps` accepted calls per appkey in any sliding window (1 s for a whole-number qps)."""

    def __init__(self, qps: float) -> None:
        self.limit = math.ceil(qps) if qps > 0 else 0
        # a fractional qps (0.5, 2.5) becomes ceil(qps) calls per ceil(qps)/qps seconds
        self.window = self.limit / qps if qps > 0 else 0.0
        self.calls: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        if not self.limit:
            return True
        calls = self.calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) >= self.limit:
            return False
        calls.append(now)
        return True


@dataclass(slots=True)
class PushedTrade:
    """A trade as trade_push last received it, and the ERP trade it became."""

    shop_no: str
    trade: dict[str, Any]
    trade_no: str


@dataclass
class WdtState:
    """What the simulated ERP holds; tests read it through `app[STATE_KEY]`."""

    config: WdtSimulatorConfig
    anchor: datetime
    stockouts: list[dict[str, Any]]
    trades: dict[str, dict[str, Any]]  # tid (the first src_tid) -> the trade as trade_query returns it
    pushed: dict[str, PushedTrade] = field(default_factory=dict)  # tid -> last push
    oid_owner: dict[str, str] = field(default_factory=dict)  # oid -> tid (an oid is unique per sid)
    limiter: _RateLimiter = field(init=False)
    sequence: int = field(init=False)
    # Stockouts sorted once by each time field the query can filter on, with the sort keys beside them,
    # so a query slices a window with bisect instead of scanning and sorting every time.
    _by_time: dict[str, tuple[list[str], list[dict[str, Any]]]] = field(init=False, default_factory=dict)

    def stockouts_by(self, time_field: str) -> tuple[list[str], list[dict[str, Any]]]:
        if time_field not in self._by_time:
            ordered = sorted(self.stockouts, key=lambda s: (s[time_field], int(s["stockout_id"])))
            self._by_time[time_field] = ([s[time_field] for s in ordered], ordered)
        return self._by_time[time_field]

    def __post_init__(self) -> None:
        self.limiter = _RateLimiter(self.config.qps)
        self.sequence = len(self.stockouts)  # pushed trades are numbered after the seeded ones
        for trade in self.trades.values():
            self.oid_owner.update((line["src_oid"], line["src_tid"]) for line in trade["goods_list"])

    @classmethod
    def build(cls, config: WdtSimulatorConfig) -> WdtState:
        anchor = simdata.resolve_anchor(config.anchor)
        if not config.seed_data:
            return cls(config, anchor, [], {})
        seed = simdata.generate_seed(config.seed, anchor, config.stockout_count)
        return cls(config, anchor, seed.stockouts, {t["src_tids"].split(",")[0]: t for t in seed.trades})

    def authenticate(self, params: Mapping[str, str], now: float) -> None:
        config = self.config
        if params.get("sid") != config.sid:
            raise _Rejected(CODE_UNKNOWN_SELLER, "卖家账号不存在")
        if params.get("appkey") != config.appkey:
            raise _Rejected(CODE_UNKNOWN_SELLER, "appkey不存在或已停用")
        if not self.limiter.allow(config.appkey, now):
            raise _Rejected(CODE_RATE_LIMITED, RATE_LIMIT_MESSAGE)
        timestamp = params.get("timestamp", "")
        if not _DIGITS.fullmatch(timestamp) or abs(int(timestamp) - now) > config.timestamp_tolerance:
            raise _Rejected(CODE_TIMESTAMP_EXPIRED, "timestamp超出允许范围(±5分钟)")
        if not hmac.compare_digest(params.get("sign", ""), sign(params, config.appsecret)):
            raise _Rejected(CODE_SIGN_ERROR, SIGN_ERROR_MESSAGE)

    def upsert(self, shop: simdata.Shop, raw: dict[str, Any], now: datetime) -> str:
        """Store one valid pushed trade; returns "new", "chg" or "same" (nothing changed)."""
        tid = str(raw["tid"])
        prior = self.pushed.get(tid)
        if prior is not None and prior.shop_no == shop.shop_no and prior.trade == raw:
            return "same"
        existing = self.trades.get(tid)  # pushed before, or synced from the platform (the seed)
        if existing is None:
            self.sequence += 1
            trade_no = f"JY{now:%Y%m%d}{self.sequence:05d}"
            trade_id, created = str(500001 + self.sequence), simdata.format_time(now)
        else:
            trade_no, trade_id, created = existing["trade_no"], existing["trade_id"], existing["created"]
        self.pushed[tid] = PushedTrade(shop.shop_no, raw, trade_no)
        for line in raw["order_list"]:
            self.oid_owner[str(line["oid"])] = tid
        self.trades[tid] = _trade_row(shop, raw, trade_no, trade_id, created, simdata.format_time(now))
        return "new" if existing is None else "chg"


STATE_KEY: Final = web.AppKey("wdt_state", WdtState)


def create_app(config: WdtSimulatorConfig) -> web.Application:
    """The simulator as an aiohttp application; serve it with aiohttp's runners or TestServer."""
    app = web.Application()
    app[STATE_KEY] = WdtState.build(config)
    app.router.add_post("/openapi2/stockout_order_query_trade.php", _endpoint(_stockout_query))
    app.router.add_post("/openapi2/trade_query.php", _endpoint(_trade_query))
    app.router.add_post("/openapi2/trade_push.php", _endpoint(_trade_push))
    return app


_Handler = Callable[[WdtState, Mapping[str, str]], dict[str, Any]]


def _endpoint(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        form = await request.post()
        params = {key: value for key, value in form.items() if isinstance(value, str)}
        try:
            state.authenticate(params, time.time())
            body = handler(state, params)
        except _Rejected as rejected:
            body = {"code": rejected.code, "message": rejected.message}
        # like the vendor: HTTP 200 whatever happened, the outcome is in `code`
        return web.Response(body=msgspec.json.encode(body), content_type="application/json", charset="utf-8")

    return handle


def _invalid(message: str) -> _Rejected:
    return _Rejected(CODE_INVALID_PARAMETER, message)


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    page_no = params.get("page_no", "0")
    page_size = params.get("page_size", str(DEFAULT_PAGE_SIZE))
    if not _DIGITS.fullmatch(page_no):
        raise _invalid("page_no无效,应为从0开始的整数")
    if not _DIGITS.fullmatch(page_size) or not 1 <= int(page_size) <= MAX_PAGE_SIZE:
        raise _invalid(f"page_size无效,应为1-{MAX_PAGE_SIZE}")
    return int(page_no), int(page_size)


def _window(params: Mapping[str, str], longest: timedelta, longest_text: str) -> tuple[str, str] | None:
    """The closed [start_time, end_time] interval, normalised so that strings compare as times."""
    start, end = params.get("start_time", ""), params.get("end_time", "")
    if not start and not end:
        return None
    if not start or not end:
        raise _invalid("start_time和end_time必须同时提供")
    try:
        begin, finish = simdata.parse_time(start), simdata.parse_time(end)
    except ValueError:
        raise _invalid("时间格式错误,应为yyyy-MM-dd HH:mm:ss") from None
    if finish < begin:
        raise _invalid("end_time不能早于start_time")
    if finish - begin > longest:
        raise _invalid(f"时间跨度不能超过{longest_text}")
    return simdata.format_time(begin), simdata.format_time(finish)


def _page_body(key: str, rows: list[dict[str, Any]], page_no: int, page_size: int) -> dict[str, Any]:
    return {
        "code": CODE_OK,
        "message": "",
        # the vendor counts only on the first page; later pages carry 0
        "total_count": len(rows) if page_no == 0 else 0,
        key: rows[page_no * page_size : (page_no + 1) * page_size],
    }


def _stockout_query(state: WdtState, params: Mapping[str, str]) -> dict[str, Any]:
    page_no, page_size = _page(params)
    window = _window(params, MAX_STOCKOUT_WINDOW, "30天")
    ids = {key: params[key] for key in ("stockout_no", "src_order_no", "src_tid") if params.get(key)}
    if window is None and not ids:
        raise _Rejected(CODE_NO_TIME_RANGE, "请指定时间范围或单号")
    status = params.get("status", "")
    if status and status not in STOCKOUT_STATUSES:
        raise _invalid(f"status无效: {status}")
    by_modified = params.get("is_by_modified", "0")
    if by_modified not in ("0", "1"):
        raise _invalid("is_by_modified无效,应为0或1")
    # the window reads ship time, except for statuses before shipping or when asked to read `modified`
    time_field = "modified" if by_modified == "1" or (status and int(status) < 95) else "consign_time"
    statuses = {status} if status else DEFAULT_STOCKOUT_STATUSES
    equal = {
        key: params[key]
        for key in ("shop_no", "warehouse_no", "stockout_no", "src_order_no")
        if params.get(key)
    }
    src_tid = params.get("src_tid", "")
    times, ordered = state.stockouts_by(time_field)
    if window is not None:
        ordered = ordered[bisect_left(times, window[0]) : bisect_right(times, window[1])]
    rows = [stockout for stockout in ordered if stockout["status"] in statuses]
    for key, value in equal.items():
        rows = [stockout for stockout in rows if stockout[key] == value]
    if src_tid:
        rows = [stockout for stockout in rows if src_tid in stockout["src_tids"].split(",")]
    return _page_body("stockout_list", rows, page_no, page_size)


def _trade_query(state: WdtState, params: Mapping[str, str]) -> dict[str, Any]:
    page_no, page_size = _page(params)
    window = _window(params, MAX_TRADE_WINDOW, "60分钟")
    if window is None and not any(params.get(key) for key in ("trade_no", "src_tid", "logistics_no")):
        raise _Rejected(CODE_NO_TIME_RANGE, "请指定时间范围或单号")
    status = params.get("status", "")
    if status and not _DIGITS.fullmatch(status):
        raise _invalid(f"status无效: {status}")
    equal = {
        key: params[key] for key in ("trade_no", "logistics_no", "shop_no", "warehouse_no") if params.get(key)
    }
    if status:
        equal["trade_status"] = status
    src_tid = params.get("src_tid", "")
    rows = [
        trade
        for trade in state.trades.values()
        if all(trade[key] == value for key, value in equal.items())
        and (not src_tid or src_tid in trade["src_tids"].split(","))
        and (window is None or window[0] <= trade["modified"] <= window[1])
    ]
    rows.sort(key=lambda trade: (trade["modified"], int(trade["trade_id"])))
    return _page_body("trades", rows, page_no, page_size)


def _trade_push(state: WdtState, params: Mapping[str, str]) -> dict[str, Any]:
    shop = _push_shop(params)
    strict = params.get("switch", "1")
    if strict not in ("0", "1"):
        raise _invalid("switch无效,应为0或1")
    trades = _trade_list(params.get("trade_list", ""))
    _check_buyer_nicks(trades)
    valid: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    seen_tids: set[str] = set()
    seen_oids: dict[str, str] = {}
    for raw in trades:
        problems = _check_trade(raw, state, seen_tids, seen_oids)
        if problems:
            tid = raw.get("tid") if isinstance(raw, dict) else None
            errors.append({"tid": str(tid or ""), "error": "; ".join(problems)})
        else:
            valid.append(raw)
    if errors and strict == "1":
        # strict mode stores nothing when any trade is wrong
        valid = []
    now = datetime.now(CHINA_TZ).replace(microsecond=0)
    outcomes = [state.upsert(shop, raw, now) for raw in valid]
    body: dict[str, Any] = {
        "code": CODE_TRADE_REJECTED if errors else CODE_OK,
        "message": msgspec.json.encode(errors).decode() if errors else "",
        "new_count": outcomes.count("new"),
        "chg_count": outcomes.count("chg"),
    }
    return body


def _push_shop(params: Mapping[str, str]) -> simdata.Shop:
    shop_no, shop_id = params.get("shop_no", ""), params.get("shop_id", "")
    if not shop_no and not shop_id:
        raise _invalid("shop_no不能为空")
    shop = simdata.SHOP_BY_NO.get(shop_no) if shop_no else simdata.SHOP_BY_ID.get(shop_id)
    if shop is None:
        raise _Rejected(CODE_UNKNOWN_SELLER, f"店铺不存在: {shop_no or shop_id}")
    return shop


def _trade_list(text: str) -> list[Any]:
    if not text:
        raise _invalid("trade_list不能为空")
    try:
        trades = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise _invalid("trade_list不是有效的JSON") from None
    if not isinstance(trades, list) or not trades:
        raise _invalid("trade_list应为非空的JSON数组")
    if len(trades) > MAX_PUSH_TRADES:
        raise _invalid(f"trade_list最多{MAX_PUSH_TRADES}个订单,实际{len(trades)}个")
    return trades


def _check_buyer_nicks(trades: Iterable[Any]) -> None:
    counts: dict[str, int] = {}
    for raw in trades:
        nick = raw.get("buyer_nick") if isinstance(raw, dict) else None
        if isinstance(nick, str) and nick:
            counts[nick] = counts.get(nick, 0) + 1
    crowded = [nick for nick, count in counts.items() if count > MAX_TRADES_PER_BUYER_NICK]
    if crowded:
        raise _Rejected(
            CODE_BUYER_NICK_LIMIT,
            f"同一buyer_nick的订单一次最多推送{MAX_TRADES_PER_BUYER_NICK}个: {crowded[0]}",
        )


class _Checker:
    """Reads fields of one pushed record, collecting errors that name the field at fault."""

    def __init__(self, record: Mapping[str, Any], prefix: str = "") -> None:
        self.record = record
        self.prefix = prefix
        self.errors: list[str] = []
        self.bad_amounts = False  # some amount is missing or unreadable, so no arithmetic on them

    def fail(self, name: str, problem: str) -> None:
        self.errors.append(f"{self.prefix}{name}: {problem}")

    def text(self, name: str, *, required: bool = False, max_length: int = 0) -> str:
        value = self.record.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "不能为空")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(name, "应为字符串")
            return ""
        text = str(value)
        if max_length and len(text) > max_length:
            self.fail(name, f"长度不能超过{max_length}")
        return text

    def choice(self, name: str, allowed: frozenset[str], *, required: bool = False) -> str:
        text = self.text(name, required=required)
        if text and text not in allowed:
            self.fail(name, f"取值无效: {text},应为{'/'.join(sorted(allowed, key=int))}")
            return ""
        return text

    def moment(self, name: str, *, required: bool = False) -> None:
        text = self.text(name, required=required)
        if text and text != ZERO_DATETIME:
            try:
                simdata.parse_time(text)
            except ValueError:
                self.fail(name, f"时间格式错误: {text},应为yyyy-MM-dd HH:mm:ss")

    def amount(self, name: str, *, required: bool = False, positive: bool = False) -> Decimal:
        """The decimal value; 0 when absent, or when wrong (then `bad_amounts` is set)."""
        text = self.text(name, required=required)
        if not text:
            self.bad_amounts |= required
            return Decimal(0)
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            self.fail(name, f"应为数字: {text}")
        elif positive and value <= 0:
            self.fail(name, f"应大于0: {text}")
        else:
            return value
        self.bad_amounts = True
        return Decimal(0)


def _check_trade(raw: Any, state: WdtState, seen_tids: set[str], seen_oids: dict[str, str]) -> list[str]:
    if not isinstance(raw, dict):
        return ["trade: 应为JSON对象"]
    check = _Checker(raw)
    tid = check.text("tid", required=True, max_length=40)
    if tid and tid in seen_tids:
        check.fail("tid", f"同一次推送中重复: {tid}")
    seen_tids.add(tid)
    check.choice("trade_status", PLATFORM_TRADE_STATUSES, required=True)
    check.choice("pay_status", frozenset("012"), required=True)
    check.choice("delivery_term", frozenset("123"), required=True)
    check.moment("trade_time", required=True)
    check.moment("pay_time")
    _check_receiver(check)
    check.choice("seller_flag", _FLAGS)
    check.choice("remark_flag", _FLAGS)
    check.choice("invoice_kind", frozenset("01234"))
    logistics_type = check.text("logistics_type")
    if logistics_type and not _INTEGER.fullmatch(logistics_type):
        check.fail("logistics_type", f"应为整数: {logistics_type}")
    warehouse_no = check.text("warehouse_no")
    if warehouse_no and warehouse_no not in simdata.WAREHOUSE_BY_NO:
        check.fail("warehouse_no", f"仓库不存在: {warehouse_no}")
    post, other = check.amount("post_amount"), check.amount("other_amount")
    check.amount("cod_amount")
    check.amount("ext_cod_fee")
    paid = check.amount("paid", required=True)
    lines = raw.get("order_list")
    if not isinstance(lines, list) or not lines:
        check.fail("order_list", "不能为空")
        return check.errors
    line_totals = [_check_line(line, n, tid, state, seen_oids, check) for n, line in enumerate(lines)]
    if not check.bad_amounts:
        expected = (sum(line_totals, Decimal(0)) + post + other).quantize(_CENT, ROUND_HALF_UP)
        if paid.quantize(_CENT, ROUND_HALF_UP) != expected:
            check.fail(
                "paid",
                f"{paid}与订单金额{expected}不符"
                "(应为Σ(price*num+adjust_amount-discount-share_discount)+post_amount+other_amount)",
            )
    return check.errors


def _check_receiver(check: _Checker) -> None:
    for name in ("receiver_name", "receiver_city", "receiver_district", "receiver_address"):
        check.text(name, required=True)
    province = check.text("receiver_province", required=True)
    if province and not simdata.is_known_province(province):
        check.fail("receiver_province", f"不是有效的省份: {province}")
    if not check.text("receiver_mobile", max_length=40) and not check.text("receiver_telno", max_length=40):
        check.fail("receiver_mobile", "receiver_mobile和receiver_telno不能同时为空")


def _check_line(
    line: Any, n: int, tid: str, state: WdtState, seen_oids: dict[str, str], trade: _Checker
) -> Decimal:
    """Validate one order line into `trade`'s errors; returns the part of `paid` it accounts for."""
    if not isinstance(line, dict):
        trade.fail(f"order_list[{n}]", "应为JSON对象")
        trade.bad_amounts = True
        return Decimal(0)
    check = _Checker(line, prefix=f"order_list[{n}].")
    oid = check.text("oid", required=True, max_length=40)
    if oid and (seen_oids.get(oid, tid) != tid or state.oid_owner.get(oid, tid) != tid):
        check.fail("oid", f"已被其他订单使用: {oid}")
    elif oid in seen_oids:
        check.fail("oid", f"同一订单中重复: {oid}")
    if oid:
        seen_oids[oid] = tid
    check.choice("status", PLATFORM_TRADE_STATUSES, required=True)
    check.choice("refund_status", _REFUND_STATUSES, required=True)
    check.text("goods_id", required=True)
    if not check.text("goods_no") and not check.text("spec_no"):
        check.fail("spec_no", "goods_no和spec_no不能同时为空")
    num = check.amount("num", required=True, positive=True)
    price = check.amount("price", required=True)
    adjust, discount, share = (check.amount(name) for name in ("adjust_amount", "discount", "share_discount"))
    trade.errors.extend(check.errors)
    trade.bad_amounts |= check.bad_amounts
    return price * num + adjust - discount - share


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _four(value: Decimal) -> str:
    return str(value.quantize(_FOUR_PLACES, ROUND_HALF_UP) + 0)  # + 0 turns -0 into 0


def _trade_row(
    shop: simdata.Shop, raw: dict[str, Any], trade_no: str, trade_id: str, created: str, modified: str
) -> dict[str, Any]:
    """A pushed trade as trade_query returns it (the same fields as a seeded trade)."""
    lines: list[dict[str, Any]] = raw["order_list"]
    goods_amount = sum((_decimal(x["price"]) * _decimal(x["num"]) for x in lines), Decimal(0))
    reductions = sum(
        (
            _decimal(x.get("discount")) + _decimal(x.get("share_discount")) - _decimal(x.get("adjust_amount"))
            for x in lines
        ),
        Decimal(0),
    )
    post, other, paid = (_decimal(raw.get(name)) for name in ("post_amount", "other_amount", "paid"))
    warehouse_no = str(raw.get("warehouse_no") or simdata.WAREHOUSES[0].warehouse_no)
    carrier = next((c for c in simdata.CARRIERS if c.logistics_type == str(raw.get("logistics_type"))), None)
    refunds = {str(x["refund_status"]) for x in lines}
    refund_status = "0" if refunds == {"0"} else "3" if refunds == {"5"} else "2"
    grams = sum(
        int(_decimal(x["num"])) * spec.weight_g
        for x in lines
        if (spec := simdata.SPEC_BY_NO.get(str(x.get("spec_no"))))
    )

    def text(name: str) -> str:
        value = raw.get(name)
        return "" if value is None else str(value)

    return {
        "shop_no": shop.shop_no,
        "shop_name": shop.shop_name,
        "platform_id": shop.platform_id,
        "warehouse_no": warehouse_no,
        "src_tids": text("tid"),
        "trade_status": _ERP_STATUS_OF_PLATFORM[text("trade_status")],
        "delivery_term": text("delivery_term"),
        "refund_status": refund_status,
        "fenxiao_type": text("fenxiao_type") or "0",
        "fenxiao_nick": text("fenxiao_nick"),
        "trade_time": text("trade_time"),
        "pay_time": text("pay_time") or ZERO_DATETIME,
        "customer_name": text("receiver_name"),
        "customer_no": f"KH{trade_no[2:]}",
        "receiver_name": text("receiver_name"),
        "receiver_province": text("receiver_province"),
        "receiver_city": text("receiver_city"),
        "receiver_district": text("receiver_district"),
        "receiver_address": text("receiver_address"),
        "receiver_mobile": text("receiver_mobile"),
        "receiver_telno": text("receiver_telno"),
        "receiver_zip": text("receiver_zip"),
        "receiver_area": f"{text('receiver_province')} {text('receiver_city')} {text('receiver_district')}",
        "receiver_dtb": f"{text('receiver_city').removesuffix('市')} {text('receiver_district')}",
        "logistics_no": "",
        "logistics_name": carrier.name if carrier else "",
        "logistics_code": carrier.logistics_code if carrier else "",
        "logistics_type": text("logistics_type") or "-1",
        "buyer_message": text("buyer_message"),
        "cs_remark": text("seller_memo"),
        "print_remark": "",
        "goods_type_count": str(len(lines)),
        "goods_count": _four(sum((_decimal(x["num"]) for x in lines), Decimal(0))),
        "post_amount": _four(post),
        "discount": _four(reductions),
        "receivable": _four(goods_amount - reductions + post + other),
        "cod_amount": _four(_decimal(raw.get("cod_amount"))),
        "paid": _four(paid),
        "weight": simdata.kilograms(grams),
        "invoice_type": text("invoice_kind") or "0",
        "invoice_title": text("invoice_title"),
        "invoice_content": text("invoice_content"),
        "trade_id": trade_id,
        "trade_no": trade_no,
        "trade_type": "1",
        "warehouse_type": "1",
        "freeze_reason": "0",
        "buyer_nick": text("buyer_nick"),
        "remark_flag": text("remark_flag") or "0",
        "goods_amount": _four(goods_amount),
        "other_amount": _four(other),
        "ext_cod_fee": _four(_decimal(raw.get("ext_cod_fee"))),
        "stockout_no": "",
        "created": created,
        "modified": modified,
        "goods_list": [
            _goods_row(shop, raw, n, line, trade_id, post, created, modified) for n, line in enumerate(lines)
        ],
    }


def _goods_row(
    shop: simdata.Shop,
    raw: dict[str, Any],
    n: int,
    line: dict[str, Any],
    trade_id: str,
    post: Decimal,
    created: str,
    modified: str,
) -> dict[str, Any]:
    num, price = _decimal(line["num"]), _decimal(line["price"])
    adjust, discount, share = (
        _decimal(line.get(name)) for name in ("adjust_amount", "discount", "share_discount")
    )
    share_amount = price * num + adjust - discount - share
    share_post = (
        post if n == len(raw["order_list"]) - 1 else Decimal(0)
    )  # the post fee rides on the last line
    spec = simdata.SPEC_BY_NO.get(str(line.get("spec_no")))

    def text(name: str) -> str:
        value = line.get(name)
        return "" if value is None else str(value)

    return {
        "rec_id": f"{trade_id}{n + 1:02d}",
        "trade_id": trade_id,
        "src_oid": text("oid"),
        "src_tid": str(raw["tid"]),
        "platform_id": shop.platform_id,
        "goods_id": text("goods_id"),
        "spec_id": text("spec_id"),
        "goods_no": text("goods_no"),
        "spec_no": text("spec_no"),
        "goods_name": text("goods_name"),
        "spec_name": text("spec_name"),
        "num": _four(num),
        "price": _four(price),
        "adjust_amount": _four(adjust),
        "discount": _four(discount),
        "share_discount": _four(share),
        "share_amount": _four(share_amount),
        "share_post": _four(share_post),
        "paid": _four(share_amount + share_post),
        "refund_status": text("refund_status"),
        "gift_type": "0",
        "remark": text("remark"),
        "cid": text("cid"),
        "weight": simdata.kilograms(int(num) * spec.weight_g) if spec else simdata.kilograms(0),
        "created": created,
        "modified": modified,
    }
