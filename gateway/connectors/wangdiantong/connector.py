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

# Canonical status -> vendor code; the mappings read the reverse through `tables`.
STOCKOUT_STATUS = {
    "cancelled": "5",
    "approved": "55",
    "shipped": "95",
    "completed": "110",
    "exception": "113",
}
STOCKOUT_STATUS_EXTRA = {"105": "shipped"}  # "partly paid" after shipping is still shipped for a consumer
TRADE_STATUS = {
    "pending_payment": "10",
    "partially_paid": "20",
    "paid": "30",
    "partially_shipped": "40",
    "shipped": "50",
    "completed": "70",
    "refunded": "80",
    "cancelled": "90",
}


class _Resource(msgspec.Struct, frozen=True):
    """How one vendor list operation is walked."""

    method: str
    list_node: str
    window: timedelta
    mapping: str
    statuses: dict[str, str]


STOCKOUTS = _Resource(
    "stockout_order_query_trade", "stockout_list", timedelta(days=30), "stockout", STOCKOUT_STATUS
)
TRADES = _Resource("trade_query", "trades", timedelta(minutes=60), "order", TRADE_STATUS)


class _Walk(msgspec.Struct, frozen=True):
    """The cursor: the query plus where the walk stands (window start, vendor page, page 0's total)."""

    end: int  # the range's end, epoch seconds
    window: int  # the current window's start, epoch seconds
    page: int
    size: int
    total: int | None = None
    status: str | None = None
    shop: str | None = None
    warehouse: str | None = None
    raw: bool = False


def _tables() -> dict[str, dict[str, str]]:
    return {
        "stockout_status": {code: name for name, code in STOCKOUT_STATUS.items()} | STOCKOUT_STATUS_EXTRA,
        "trade_status": {code: name for name, code in TRADE_STATUS.items()},
        "trade_status_code": dict(TRADE_STATUS),
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
                    "status": walk.status,
                    "shop_no": walk.shop,
                    "warehouse_no": walk.warehouse,
                    "page_no": walk.page,
                    "page_size": walk.size,
                },
            )
            # total_count is only filled on page 0: keep it in the cursor for the later pages.
            total = int(answer.get("total_count") or 0) if walk.page == 0 else (walk.total or 0)
            items.extend(self._canonical(resource, r, walk.raw) for r in answer.get(resource.list_node) or [])
            walk = self._next(walk, total, window_end)
            if items:
                break
        return Page(items=items, next_cursor=encode_cursor(walk) if walk else None)

    @staticmethod
    def _next(walk: _Walk, total: int, window_end: int) -> _Walk | None:
        if (walk.page + 1) * walk.size < total:
            return msgspec.structs.replace(walk, page=walk.page + 1, total=total)
        if window_end < walk.end:
            return msgspec.structs.replace(walk, window=window_end + 1, page=0, total=None)
        return None

    def _start(self, resource: _Resource, query: ListQuery) -> _Walk:
        if query.updated_from > query.updated_to:
            raise InvalidParameter("updated_from", "updated_from must not be after updated_to")
        if not 1 <= query.limit <= PAGE_SIZE_MAX:
            raise InvalidParameter("limit", f"limit must be between 1 and {PAGE_SIZE_MAX}")
        status = None
        if query.status is not None:
            status = resource.statuses.get(query.status)
            if status is None:
                raise InvalidParameter(
                    "status", f"status must be one of {', '.join(resource.statuses)} for {resource.mapping}s"
                )
        return _Walk(
            end=int(query.updated_to.timestamp()),
            window=int(query.updated_from.timestamp()),
            page=0,
            size=query.limit,
            status=status,
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
