"""Wangdiantong enterprise connector: stockouts, orders (trades) and order push, on canonical records.

Any time range a consumer asks for is walked as the vendor's windows (30 days for stockouts,
60 minutes for trades) and its pages (from 0, `total_count` on page 0 only); the cursor
carries the walk's position, so paging is stable across windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec

from gateway.connectors.base import (
    ConnectionConfig,
    Connector,
    ListQuery,
    Page,
    Record,
    decode_cursor,
    encode_cursor,
    load_mappings,
)
from gateway.connectors.wangdiantong.client import SYSTEM, WdtClient
from gateway.errors import InvalidParameter, NotFound
from gateway.mapping import Mapping
from gateway.upstream import Upstream

MAPPINGS = Path(__file__).parent / "mappings"
VENDOR_TIME = "%Y-%m-%d %H:%M:%S"
PAGE_SIZE_MAX = 100
# A request walks at most this many vendor calls before it answers with what it has and a cursor,
# so a long range of empty windows cannot hold one request for minutes.
CALLS_PER_REQUEST = 24

# Vendor stockout status -> canonical. 105 ("partly paid") comes after shipping: shipped for a consumer.
STOCKOUT_STATUS = {
    "5": "cancelled",
    "55": "approved",
    "95": "shipped",
    "105": "shipped",
    "110": "completed",
    "113": "exception",
}
# The ERP's own trade statuses (trade_query answers these, not the platform codes trade_push takes).
ERP_TRADE_STATUS = {"5": "cancelled", "10": "pending_payment", "12": "partially_paid", "95": "shipped"}
ERP_TRADE_STATUS |= {code: "paid" for code in ("13", "15", "16", "19", "20", "21", "22", "25", "27", "30")}
ERP_TRADE_STATUS |= {code: "paid" for code in ("35", "40", "45", "50", "53", "55")}
ERP_TRADE_STATUS |= {"105": "shipped", "110": "completed", "113": "shipped"}
# Platform trade statuses, as trade_push takes them.
PLATFORM_TRADE_STATUS = {
    "pending_payment": "10",
    "partially_paid": "20",
    "paid": "30",
    "partially_shipped": "40",
    "shipped": "50",
    "completed": "70",
    "refunded": "80",
    "cancelled": "90",
}
# A canonical status filter is sent as vendor status codes, one query pass each, when there are at most
# this many; beyond that the gateway asks for every status and keeps the matching records itself.
MAX_STATUS_PASSES = 3


class _Resource(msgspec.Struct, frozen=True):
    """How one vendor list operation is walked."""

    method: str
    list_node: str
    window: timedelta
    mapping: str
    statuses: dict[str, str]  # vendor code -> canonical status
    # The passes that return every record: without `status` the stockout query returns only shipped
    # and finished stockouts (protocols.md 1.4), so the other statuses need passes of their own.
    every_status: tuple[str | None, ...]

    def passes(self, canonical: str | None) -> tuple[tuple[str | None, ...], str | None]:
        """The vendor status of each pass, and the canonical status to keep after mapping (if any)."""
        if canonical is None:
            return self.every_status, None
        codes = tuple(code for code, name in self.statuses.items() if name == canonical)
        if not codes:
            known = sorted(set(self.statuses.values()))
            raise InvalidParameter("status", f"status must be one of {', '.join(known)} for {self.mapping}s")
        if len(codes) <= MAX_STATUS_PASSES:
            return codes, None
        return self.every_status, canonical


STOCKOUTS = _Resource(
    "stockout_order_query_trade",
    "stockout_list",
    timedelta(days=30),
    "stockout",
    STOCKOUT_STATUS,
    (None, "5", "55", "105", "113"),
)
TRADES = _Resource("trade_query", "trades", timedelta(minutes=60), "order", ERP_TRADE_STATUS, (None,))


class _Walk(msgspec.Struct, frozen=True):
    """The cursor: the query, and where the walk stands (status pass, window, page, page 0's total)."""

    start: int  # the range, epoch seconds
    end: int
    passes: tuple[str | None, ...]
    size: int
    step: int = 0  # index into passes
    window: int = 0  # the current window's start, epoch seconds
    page: int = 0
    total: int | None = None
    keep: str | None = None
    shop: str | None = None
    warehouse: str | None = None
    raw: bool = False


def _tables() -> dict[str, dict[str, str]]:
    return {
        "stockout_status": STOCKOUT_STATUS,
        "trade_status": ERP_TRADE_STATUS,
        "trade_status_code": PLATFORM_TRADE_STATUS,
    }


class WangdiantongConnector(Connector):
    system: ClassVar[str] = SYSTEM

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config, upstream)
        creds = config.credentials
        for field in ("sid", "appkey", "appsecret"):
            if not creds.get(field):
                raise InvalidParameter(f"credentials.{field}", f"a Wangdiantong connection needs {field}")
        self.client = WdtClient(
            base_url=config.base_url,
            sid=creds["sid"],
            appkey=creds["appkey"],
            appsecret=creds["appsecret"],
            upstream=upstream,
            target=self.target,
        )
        self.tz = ZoneInfo(config.options.get("timezone", "Asia/Shanghai"))
        self.mappings: dict[str, Mapping] = load_mappings(
            MAPPINGS, ["stockout", "order", "order_push"], _tables()
        )

    # -- reads ---------------------------------------------------------------------------------

    async def list_stockouts(self, query: ListQuery, cursor: str | None) -> Page:
        return await self._walk(STOCKOUTS, query, cursor, {"is_by_modified": 1})

    async def list_orders(self, query: ListQuery, cursor: str | None) -> Page:
        return await self._walk(TRADES, query, cursor, {})

    async def get_stockout(self, stockout_no: str, include_remote_data: bool) -> Record:
        answer = await self.client.call(
            STOCKOUTS.method, {"stockout_no": stockout_no, "page_no": 0, "page_size": 1}
        )
        return self._one(answer, STOCKOUTS, "stockout", stockout_no, include_remote_data)

    async def get_order(self, order_no: str, include_remote_data: bool) -> Record:
        answer = await self.client.call(TRADES.method, {"trade_no": order_no, "page_no": 0, "page_size": 1})
        return self._one(answer, TRADES, "order", order_no, include_remote_data)

    def _one(self, answer: dict[str, Any], resource: _Resource, what: str, number: str, raw: bool) -> Record:
        records = answer.get(resource.list_node) or []
        if not records:
            raise NotFound(f"no {what} {number!r} in connection {self.name!r}")
        return self._canonical(resource, records[0], raw)

    async def _walk(
        self, resource: _Resource, query: ListQuery, cursor: str | None, fixed: dict[str, Any]
    ) -> Page:
        walk: _Walk | None = decode_cursor(cursor, _Walk) if cursor else self._start(resource, query)
        items: list[Record] = []
        for _ in range(CALLS_PER_REQUEST):
            if walk is None:
                break
            window_end = min(walk.window + int(resource.window.total_seconds()) - 1, walk.end)
            answer = await self.client.call(
                resource.method,
                {
                    **fixed,
                    "start_time": self._vendor_time(walk.window),
                    "end_time": self._vendor_time(window_end),
                    "status": walk.passes[walk.step],
                    "shop_no": walk.shop,
                    "warehouse_no": walk.warehouse,
                    "page_no": walk.page,
                    "page_size": walk.size,
                },
            )
            # total_count is only filled on page 0: keep it in the cursor for the later pages.
            total = int(answer.get("total_count") or 0) if walk.page == 0 else (walk.total or 0)
            mapped = (self._canonical(resource, r, walk.raw) for r in answer.get(resource.list_node) or [])
            items.extend(item for item in mapped if walk.keep is None or item["status"] == walk.keep)
            walk = self._next(walk, total, window_end)
            if items:
                break
        return Page(items=items, next_cursor=encode_cursor(walk) if walk else None)

    @staticmethod
    def _next(walk: _Walk, total: int, window_end: int) -> _Walk | None:
        """The next vendor page, else the next window, else the next status pass, else the end."""
        if (walk.page + 1) * walk.size < total:
            return msgspec.structs.replace(walk, page=walk.page + 1, total=total)
        if window_end < walk.end:
            return msgspec.structs.replace(walk, window=window_end + 1, page=0, total=None)
        if walk.step + 1 < len(walk.passes):
            return msgspec.structs.replace(walk, step=walk.step + 1, window=walk.start, page=0, total=None)
        return None

    def _start(self, resource: _Resource, query: ListQuery) -> _Walk:
        if query.updated_from > query.updated_to:
            raise InvalidParameter("updated_from", "updated_from must not be after updated_to")
        if not 1 <= query.limit <= PAGE_SIZE_MAX:
            raise InvalidParameter("limit", f"limit must be between 1 and {PAGE_SIZE_MAX}")
        passes, keep = resource.passes(query.status)
        start = int(query.updated_from.timestamp())
        return _Walk(
            start=start,
            end=int(query.updated_to.timestamp()),
            passes=passes,
            size=query.limit,
            window=start,
            keep=keep,
            shop=query.shop,
            warehouse=query.warehouse,
            raw=query.include_remote_data,
        )

    def _vendor_time(self, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime(VENDOR_TIME)

    def _canonical(self, resource: _Resource, record: dict[str, Any], raw: bool) -> Record:
        out = self.mappings[resource.mapping](record)
        out["connection"] = self.name
        out["remote_data"] = record if raw else None
        return out

    # -- writes --------------------------------------------------------------------------------

    async def create_order(self, order: Record) -> Record:
        trade = self.mappings["order_push"](order)
        answer = await self.client.call(
            "trade_push",
            {"shop_no": order["shop_code"], "switch": 1, "trade_list": [trade]},
            idempotent=False,
        )
        return {
            "connection": self.name,
            "platform_order_id": trade["tid"],
            "created": int(answer.get("new_count") or 0) > 0,
            "updated": int(answer.get("chg_count") or 0) > 0,
        }

    async def check(self) -> Record:
        now = int(datetime.now(self.tz).timestamp())
        answer = await self.client.call(
            STOCKOUTS.method,
            {
                "start_time": self._vendor_time(now - 3600),
                "end_time": self._vendor_time(now),
                "page_no": 0,
                "page_size": 1,
            },
        )
        return {"ok": True, "vendor": {"code": answer.get("code"), "message": answer.get("message", "")}}
