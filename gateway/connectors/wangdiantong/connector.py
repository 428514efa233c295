"""Wangdiantong enterprise connector: stockouts, orders (trades) and order push, on canonical records.

Any time range a consumer asks for is walked as the vendor's windows (30 days for stockouts,
60 minutes for trades) and its pages (from 0, `total_count` on page 0 only); the cursor
carries the walk's position, so paging is stable across windows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypedDict, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from gateway.connectors import simdata
from gateway.connectors.base import (
    ConnectionConfig,
    Connector,
    ListQuery,
    OperationInfo,
    Page,
    PushOutcome,
    Record,
    SourcePage,
    bad_cursor,
    cursor_of_another_connection,
    cursor_of_another_list,
    decode_cursor,
    encode_cursor,
    load_mappings,
)
from gateway.connectors.wangdiantong.client import SYSTEM, WdtClient
from gateway.errors import (
    InvalidParameter,
    NotFound,
    UnigateError,
    UpstreamError,
    VendorError,
    VendorRateLimited,
)
from gateway.mapping import FieldSpec, Mapping, MappingError, MappingSpec
from gateway.mapping.reads import source_type
from gateway.upstream import Upstream

log = logging.getLogger("unigate.connectors")
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


Epoch = Annotated[int, msgspec.Meta(ge=0, lt=253370764800)]  # 1970 to 9999, as the unified API takes
Count = Annotated[int, msgspec.Meta(ge=0)]


class _Walk(msgspec.Struct, frozen=True, kw_only=True):
    """The cursor: the query, and where the walk stands (status pass, window, page, page 0's total).
    A caller holds it between requests, so `_checked` holds it to what this connector could have written."""

    kind: str  # the resource's mapping: a stockout cursor is no order cursor
    start: Epoch  # the range
    end: Epoch
    passes: tuple[str | None, ...]
    size: Annotated[int, msgspec.Meta(ge=1, le=PAGE_SIZE_MAX)]  # the caller's limit
    step: Count = 0  # index into passes
    window: Epoch = 0  # the current window's start
    page: Count = 0
    total: Count | None = None
    seen: tuple[str, ...] = ()  # the remote ids page 0 gave when first read (see _advance)
    # The vendor page size of the window under way, chosen at its page 0 (see `_take`); 0 (a cursor from
    # before pages were filled): `size`.
    take: Annotated[int, msgspec.Meta(ge=0, le=PAGE_SIZE_MAX)] = 0
    keep: str | None = None
    shop: str | None = None
    warehouse: str | None = None
    raw: bool = False
    # The connection that made it: another connection's windows and pages are not this walk's. Required: a
    # cursor without one (an edited one, or one from before it was recorded) is not taken by any connection.
    connection: str


# trade_push takes at most this many trades a call (protocols.md 1.4).
PUSH_BATCH_MAX = 50
# trade_push names rejected trades in `message` as a JSON array of {tid, error} with this code [inferred].
CODE_TRADE_REJECTED = "2840"
# trade_push's oid (unique per seller, protocols.md 1.4) is at most this long, like tid.
OID_MAX = 40
# "appkey disabled / shop does not exist" (protocols.md 1.3): the message tells which.
CODE_UNKNOWN_SELLER = "1007"
# trade_push's line-level fields that the request carries once, beside trade_list (seed-scheme.md).
REQUEST_LEVEL = ("trade_list", "shop_no", "switch")
_STOCKOUT_LINE_FIELDS = """
    rec_id src_oid src_tid platform_id goods_id spec_id goods_no spec_no spec_code goods_name spec_name
    barcode goods_count sell_price market_price cost_price total_amount discount share_amount share_post
    paid gift_type refund_status goods_type unit_name weight remark created
"""
_TRADE_FIELDS = """
    tid trade_status pay_status delivery_term trade_time:datetime pay_time:datetime fenxiao_type purchase_id
    fenxiao_nick buyer_nick buyer_email pay_id pay_account receiver_name receiver_address receiver_province
    receiver_city receiver_district receiver_mobile receiver_telno receiver_zip logistics_type invoice_kind
    invoice_title invoice_content remark_flag buyer_message seller_memo seller_flag post_amount:decimal
    cod_amount:decimal ext_cod_fee:decimal other_amount:decimal paid:decimal is_auto_wms warehouse_no
    order_list:list order_list.oid order_list.num:decimal order_list.price:decimal order_list.status
    order_list.refund_status order_list.goods_id order_list.spec_id order_list.goods_no order_list.spec_no
    order_list.goods_name order_list.spec_name order_list.adjust_amount:decimal order_list.discount:decimal
    order_list.share_discount:decimal order_list.remark order_list.cid order_list.trade_list:list
    order_list.shop_no order_list.switch
"""


def _typed(words: str | tuple[str, ...]) -> dict[str, str]:
    """`name:type` words (type string when left out) -> {name: type}."""
    items = words.split() if isinstance(words, str) else words
    return {word.partition(":")[0]: word.partition(":")[2] or "string" for word in items}


OPERATIONS = (
    OperationInfo(
        name=STOCKOUTS.method,
        role="source",
        title="Sales stockouts (销售出库单), by modification time",
        key="stockout_no",
        incremental=True,
        params={
            "statuses": "vendor stockout statuses to read, each its own pass (default: all but 5, cancelled)",
            "shop_no": "only this shop",
            "warehouse_no": "only this warehouse",
        },
        fields={
            **_typed(simdata.STOCKOUT_FIELDS),
            "details_list": "list",
            **{f"details_list.{name}": "string" for name in _STOCKOUT_LINE_FIELDS.split()},
        },
    ),
    OperationInfo(
        name="trade_push",
        role="target",
        title="Push platform orders (trade_push) into the ERP",
        key="tid",
        max_batch=PUSH_BATCH_MAX,
        params={
            "shop_no": "the ERP shop the trades belong to (default: each trade's order_list[0].shop_no)",
            "switch": "0 lenient: a bad trade does not stop the others (default); 1 strict",
        },
        fields=_typed(_TRADE_FIELDS),
    ),
)


class _Pull(msgspec.Struct, frozen=True):
    """A scheme pull's cursor: the status pass, the window and the page it stands at."""

    start: int
    end: int
    passes: tuple[str | None, ...]
    step: int = 0
    window: int = 0
    page: int = 0
    total: int | None = None
    seen: tuple[str, ...] = ()  # the stockout ids page 0 gave when first read (see _advance)
    shop: str | None = None
    warehouse: str | None = None


# Walking one window's pages. The vendor pages by offset (page_no * page_size) and fills total_count on page 0
# only. Read forward, a record that changes between two pages leaves its place (its `modified` moves past the
# window) and every later record moves up one: the one that crosses the page boundary was never read. So a
# window of several pages is read page 0 first (it says how many there are), then from its last page down,
# then page 0 again for what moved into it, less what its first reading gave (`seen`). A record that changes
# meanwhile moves only records not yet read towards page 0: at worst one is listed twice, none is skipped.


def _fresh(state: _Walk | _Pull, key: str) -> bool:
    """Whether a record of the page just read is new to the walk (only page 0's second reading repeats)."""
    return state.total is None or state.page > 0 or key not in state.seen


State = TypeVar("State", _Walk, _Pull)


def _advance(state: State, size: int, total: int, window_end: int, keys: Iterable[str]) -> State | None:
    """After a page (`keys` its records' keys): the window's last page after page 0, the page below after
    any other, page 0 again after page 1; after that the next window, else the next status pass, else None."""
    if state.total is None and total > size:
        return msgspec.structs.replace(state, page=(total - 1) // size, total=total, seen=tuple(keys))
    if state.total is not None and state.page > 0:
        return msgspec.structs.replace(state, page=state.page - 1)
    if window_end < state.end:
        return msgspec.structs.replace(state, window=window_end + 1, page=0, total=None, seen=())
    if state.step + 1 < len(state.passes):
        return msgspec.structs.replace(
            state, step=state.step + 1, window=state.start, page=0, total=None, seen=()
        )
    return None


def _take(walk: _Walk, room: int) -> _Walk | None:
    """The walk ready for its next vendor call on a page with `room` items left, or None to answer now.

    A page is filled across windows, so that a sparse range is not one vendor hour per page. What the
    next call may return must fit: a window keeps one page size from its page 0 on (the vendor pages by
    offset), so a window begun on a part-filled page is read in pages of the room left, at least half a
    page (fewer would spend vendor calls, which are scarcer than the caller's requests, on small pages);
    a window under way is read on only while a whole page of it fits."""
    if walk.total is None:  # the window's page 0, not read yet (`_checked`: page is 0): choose its size
        return msgspec.structs.replace(walk, take=room) if room >= max(1, walk.size // 2) else None
    return walk if room >= (walk.take or walk.size) else None


def _checked(walk: _Walk, resource: _Resource) -> _Walk:
    """A cursor this connector could have written for `resource`, else InvalidParameter: an edited one
    would otherwise reach the vendor as a bad page or status (a 502) or fail here (a 500)."""
    statuses = resource.statuses
    if not (
        walk.kind == resource.mapping
        and walk.step < len(walk.passes)
        and all(code is None or code in statuses for code in walk.passes)
        and walk.start <= walk.window <= walk.end
        and (walk.keep is None or walk.keep in statuses.values())
        and (walk.total is not None or walk.page == 0)
        and walk.take <= walk.size
        and len(walk.seen) <= (walk.take or walk.size)
    ):
        raise bad_cursor()
    return walk


def _differing(walk: _Walk, resource: _Resource, query: ListQuery) -> list[str]:
    """The list parameters the caller sent (`query.given`) whose values are not the cursor's, in the
    order the API documents them. Times compare as the walk keeps them, in whole seconds."""
    sent: dict[str, bool] = {
        "updated_from": int(query.updated_from.timestamp()) != walk.start,
        "updated_to": int(query.updated_to.timestamp()) != walk.end,
        # The status as the walk runs it (passes, and what to keep): no two statuses run alike.
        "status": resource.passes(query.status) != (walk.passes, walk.keep),
        "shop": query.shop != walk.shop,
        "warehouse": query.warehouse != walk.warehouse,
        "limit": query.limit != walk.size,
        "include": query.include_remote_data != walk.raw,
    }
    return [name for name, differs in sent.items() if differs and name in query.given]


@lru_cache(maxsize=4096)
def _vendor_time(epoch: int, tz: ZoneInfo) -> str:
    # Every list request formats its window's two ends; a walk's ends repeat, and zone-aware
    # formatting costs ~5 us each.
    return datetime.fromtimestamp(epoch, tz).strftime(VENDOR_TIME)


def _answer_decoder(resource: _Resource, mapping: Mapping) -> msgspec.json.Decoder[Any]:
    """The envelope, and of each listed record what `mapping` reads (gateway.mapping.reads)."""
    answer = TypedDict(  # type: ignore[misc]
        f"{resource.method}_answer",
        {
            "code": Any,
            "message": Any,
            "total_count": Any,
            resource.list_node: list[source_type(mapping.spec)] | None,  # type: ignore[misc]
        },
        total=False,
    )
    return msgspec.json.Decoder(answer)


_LINE_INDEX = re.compile(r"\[\d+\]")


def _pushed_from(spec: MappingSpec) -> dict[str, str]:
    """trade_push field -> the NewOrder field the order_push mapping takes it from (`order_list[].oid` ->
    `lines[].line_id`), so that a refusal naming a vendor field names the caller's field."""
    names: dict[str, str] = {}

    def walk(fields: tuple[FieldSpec, ...], vendor: str, canonical: str) -> None:
        for field in fields:
            if field.each is not None:
                walk(field.fields, f"{vendor}{field.name}[].", f"{canonical}{field.each.text}[].")
                continue
            paths = [*field.sources, *(part.path for part in field.template if part.path is not None)]
            own = [path.text for path in paths if path.scope == "self"]
            parent = [".".join(map(str, path.steps)) for path in paths if path.scope == "parent"]
            if own:  # a line's own field before the order's (oid: line_id rather than platform_order_id)
                names[f"{vendor}{field.name}"] = f"{canonical}{own[-1] if field.template else own[0]}"
            elif parent:
                names[f"{vendor}{field.name}"] = parent[0]

    walk(spec.fields, "", "")
    return names


def _tables() -> dict[str, dict[str, str]]:
    return {
        "stockout_status": STOCKOUT_STATUS,
        "trade_status": ERP_TRADE_STATUS,
        "trade_status_code": PLATFORM_TRADE_STATUS,
    }


class WangdiantongConnector(Connector):
    system: ClassVar[str] = SYSTEM
    operations: ClassVar[tuple[OperationInfo, ...]] = OPERATIONS

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
        # A list answer decoded into only what its mapping reads (a stockout: 34 of 152 fields), unless
        # the caller asked for the raw records (include=remote_data).
        self.decoders = {
            resource.mapping: _answer_decoder(resource, self.mappings[resource.mapping])
            for resource in (STOCKOUTS, TRADES)
        }
        self._pushed_from = _pushed_from(self.mappings["order_push"].spec)

    # -- reads ---------------------------------------------------------------------------------

    async def list_stockouts(self, query: ListQuery, cursor: str | None) -> Page:
        return await self._walk(STOCKOUTS, query, cursor, {"is_by_modified": 1})

    async def list_orders(self, query: ListQuery, cursor: str | None) -> Page:
        return await self._walk(TRADES, query, cursor, {})

    async def get_stockout(self, stockout_no: str, include_remote_data: bool) -> Record:
        # Without `status` the vendor finds only shipped and finished stockouts (protocols.md 1.4): an
        # approved or cancelled one the list just showed is looked for pass by pass, as the list walks.
        for status in STOCKOUTS.every_status:
            params: dict[str, Any] = {"stockout_no": stockout_no, "page_no": 0, "page_size": 1}
            if status is not None:
                params["status"] = status
            answer = await self.client.call(
                STOCKOUTS.method, params, decoder=self._decoder(STOCKOUTS, include_remote_data)
            )
            if answer.get(STOCKOUTS.list_node):
                break
        return self._one(answer, STOCKOUTS, "stockout", stockout_no, include_remote_data)

    async def get_order(self, order_no: str, include_remote_data: bool) -> Record:
        answer = await self.client.call(
            TRADES.method,
            {"trade_no": order_no, "page_no": 0, "page_size": 1},
            decoder=self._decoder(TRADES, include_remote_data),
        )
        return self._one(answer, TRADES, "order", order_no, include_remote_data)

    def _decoder(self, resource: _Resource, raw: bool) -> msgspec.json.Decoder[Any] | None:
        return None if raw else self.decoders[resource.mapping]

    def _one(self, answer: dict[str, Any], resource: _Resource, what: str, number: str, raw: bool) -> Record:
        records = answer.get(resource.list_node) or []
        if not records:
            raise NotFound(f"no {what} {number!r} in connection {self.name!r}")
        return self._canonical(resource, records[0], raw)

    async def _walk(
        self, resource: _Resource, query: ListQuery, cursor: str | None, fixed: dict[str, Any]
    ) -> Page:
        walk: _Walk | None = (
            self._continued(resource, query, cursor) if cursor else self._start(resource, query)
        )
        items: list[Record] = []
        for _ in range(CALLS_PER_REQUEST):
            if walk is None or (ready := _take(walk, walk.size - len(items))) is None:
                break  # walked to the end, or the next page would not fit: the cursor says where it stands
            walk = ready
            take = walk.take or walk.size
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
                    "page_size": take,
                },
                decoder=self._decoder(resource, walk.raw),
            )
            total = int(answer.get("total_count") or 0)
            page = [self._canonical(resource, r, walk.raw) for r in answer.get(resource.list_node) or []]
            items.extend(
                item
                for item in page
                if _fresh(walk, item["remote_id"]) and (walk.keep is None or item["status"] == walk.keep)
            )
            walk = _advance(walk, take, total, window_end, (item["remote_id"] for item in page))
        return Page(items=items, next_cursor=encode_cursor(walk) if walk else None)

    def _continued(self, resource: _Resource, query: ListQuery, cursor: str) -> _Walk:
        """The walk a cursor holds, if it is this connection's and the list the filters sent with it name."""
        walk = _checked(decode_cursor(cursor, _Walk), resource)
        if walk.connection != self.name:
            raise cursor_of_another_connection(walk.connection, self.name)
        if query.given and (differing := _differing(walk, resource, query)):
            raise cursor_of_another_list(differing)
        return walk

    def _start(self, resource: _Resource, query: ListQuery) -> _Walk:
        if query.updated_from > query.updated_to:
            raise InvalidParameter("updated_from", "updated_from must not be after updated_to")
        if not 1 <= query.limit <= PAGE_SIZE_MAX:
            raise InvalidParameter("limit", f"limit must be between 1 and {PAGE_SIZE_MAX}")
        passes, keep = resource.passes(query.status)
        start = int(query.updated_from.timestamp())
        return _Walk(
            kind=resource.mapping,
            start=start,
            end=int(query.updated_to.timestamp()),
            passes=passes,
            size=query.limit,
            window=start,
            keep=keep,
            shop=query.shop,
            warehouse=query.warehouse,
            raw=query.include_remote_data,
            connection=self.name,
        )

    def _vendor_time(self, epoch: int) -> str:
        return _vendor_time(epoch, self.tz)

    def _canonical(self, resource: _Resource, record: dict[str, Any], raw: bool) -> Record:
        out = self.mappings[resource.mapping](record)
        out["connection"] = self.name
        out["remote_data"] = record if raw else None
        return out

    # -- writes --------------------------------------------------------------------------------

    async def create_order(self, order: Record) -> Record:
        try:
            trade = self.mappings["order_push"](order)
        except MappingError as exc:
            raise InvalidParameter(self._order_field(exc.field or "") or "body", str(exc)) from None
        for n, line in enumerate(trade["order_list"]):
            if len(line["oid"]) > OID_MAX:
                raise InvalidParameter(
                    f"lines[{n}].line_id",
                    f"{SYSTEM} keeps a line as '<platform_order_id>-<line_id>', at most {OID_MAX} chars: "
                    f"{line['oid']!r} is {len(line['oid'])}",
                )
        try:
            answer = await self.client.call(
                "trade_push",
                {"shop_no": order["shop_code"], "switch": 1, "trade_list": [trade]},
                idempotent=False,
            )
        except VendorRateLimited:
            raise
        except VendorError as exc:
            raise self._order_refused(exc) from None
        return {
            "connection": self.name,
            "platform_order_id": trade["tid"],
            "order_no": await self._order_no_of(trade["tid"]),
            "created": int(answer.get("new_count") or 0) > 0,
            "updated": int(answer.get("chg_count") or 0) > 0,
        }

    async def _order_no_of(self, tid: str) -> str | None:
        """The backend's number of the order just pushed as `tid`: trade_push does not say it, trade_query
        by src_tid does. None when that call fails: the push is done, and only its answer lacks the number."""
        try:
            answer = await self.client.call(TRADES.method, {"src_tid": tid, "page_no": 0, "page_size": 1})
        except UnigateError as exc:
            log.warning(
                "the pushed order's number could not be read back",
                extra={"connection": self.name, "code": exc.code, "detail": exc.detail},
            )
            return None
        found = answer.get(TRADES.list_node) or []
        return str(found[0]["trade_no"]) if found and found[0].get("trade_no") else None

    def _order_refused(self, exc: VendorError) -> UnigateError:
        """The vendor's refusal of a pushed order as invalid_parameter naming the NewOrder field at fault
        (its answer kept as `vendor`), when the vendor names one; otherwise the vendor_error as it was."""
        vendor = exc.extra["vendor"]  # as VendorError keeps it
        if exc.vendor_code == CODE_UNKNOWN_SELLER and "店铺" in exc.vendor_message:  # not the appkey's
            detail = f"{SYSTEM} does not know this shop_code ({exc.vendor_message})"
            return InvalidParameter("shop_code", detail, vendor=vendor)
        if exc.vendor_code != CODE_TRADE_REJECTED:
            return exc
        try:
            problems = [str(item["error"]) for item in msgspec.json.decode(exc.vendor_message)]
        except (msgspec.DecodeError, KeyError, TypeError):
            return exc
        # Each problem reads "field: what is wrong"; lines are named as `order_list[n].field`.
        first = problems[0].split("; ")[0] if problems else ""
        name = self._order_field(first.partition(": ")[0])
        if name is None:
            return exc
        return InvalidParameter(name, f"{SYSTEM} refused the order: {'; '.join(problems)}", vendor=vendor)

    def _order_field(self, vendor_field: str) -> str | None:
        """The NewOrder field a trade_push field comes from, its line numbered: order_list[1].oid ->
        lines[1].line_id."""
        name = self._pushed_from.get(_LINE_INDEX.sub("[]", vendor_field))
        index = _LINE_INDEX.search(vendor_field)
        return name.replace("[]", index.group(0), 1) if name and index else name

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

    # -- vendor-level operations, for schemes ---------------------------------------------------

    async def pull(
        self,
        operation: str,
        params: dict[str, Any],
        since: datetime | None,
        until: datetime,
        cursor: str | None,
    ) -> SourcePage:
        """Raw stockouts modified in [since, until], one vendor call per page, walked like `_walk`."""
        self.operation(operation, "source")
        if cursor:
            state = decode_cursor(cursor, _Pull)
        else:
            statuses = params.get("statuses") or [c for c in STOCKOUTS.statuses if c != "5"]
            unknown = [str(code) for code in statuses if str(code) not in STOCKOUTS.statuses]
            if unknown:
                raise InvalidParameter("source.params.statuses", f"unknown stockout status {unknown[0]!r}")
            begin = since or until - STOCKOUTS.window
            start = int(begin.timestamp())
            state = _Pull(
                start=start,
                end=int(until.timestamp()),
                passes=tuple(str(code) for code in statuses),
                window=start,
                shop=params.get("shop_no"),
                warehouse=params.get("warehouse_no"),
            )
        window_end = min(state.window + int(STOCKOUTS.window.total_seconds()) - 1, state.end)
        answer = await self.client.call(
            STOCKOUTS.method,
            {
                "is_by_modified": 1,
                "start_time": self._vendor_time(state.window),
                "end_time": self._vendor_time(window_end),
                "status": state.passes[state.step],
                "shop_no": state.shop,
                "warehouse_no": state.warehouse,
                "page_no": state.page,
                "page_size": PAGE_SIZE_MAX,
            },
        )
        total = int(answer.get("total_count") or 0)
        page = answer.get(STOCKOUTS.list_node) or []
        records = [record for record in page if _fresh(state, str(record.get("stockout_id")))]
        following = _advance(
            state, PAGE_SIZE_MAX, total, window_end, (str(record.get("stockout_id")) for record in page)
        )
        return SourcePage(records=records, cursor=encode_cursor(following) if following else None)

    async def push(self, operation: str, records: list[Record], params: dict[str, Any]) -> list[PushOutcome]:
        """trade_push, one call per shop; lenient by default so one bad trade does not sink the others."""
        self.operation(operation, "target")
        if len(records) > PUSH_BATCH_MAX:
            raise InvalidParameter("target.batch_size", f"trade_push takes at most {PUSH_BATCH_MAX} trades")
        switch = str(params.get("switch", 0))
        by_shop: dict[str, list[int]] = {}
        trades: list[dict[str, Any]] = []
        for position, record in enumerate(records):
            trade, shop = _trade_of(record)
            trades.append(trade)
            by_shop.setdefault(str(params.get("shop_no") or shop), []).append(position)
        outcomes: list[PushOutcome | None] = [None] * len(records)
        for shop, positions in by_shop.items():
            batch = [trades[p] for p in positions]
            for position, outcome in zip(positions, await self._push_shop(shop, switch, batch), strict=True):
                outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    async def _push_shop(self, shop: str, switch: str, trades: list[dict[str, Any]]) -> list[PushOutcome]:
        try:
            answer = await self.client.call(
                "trade_push", {"shop_no": shop, "switch": switch, "trade_list": trades}
            )
        except VendorError as exc:
            if exc.vendor_code != CODE_TRADE_REJECTED:
                return [_failed(exc, isinstance(exc, VendorRateLimited)) for _ in trades]
            return _per_trade(trades, exc.vendor_message)
        except UpstreamError as exc:
            return [_failed(exc, True) for _ in trades]
        counts = {"new_count": answer.get("new_count"), "chg_count": answer.get("chg_count")}
        return [
            PushOutcome(ok=True, answer={"code": 0, "tid": trade.get("tid"), **counts}) for trade in trades
        ]

    async def find_pushed(self, operation: str, records: list[Record], params: dict[str, Any]) -> list[bool]:
        self.operation(operation, "target")
        found: list[bool] = []
        for record in records:
            answer = await self.client.call(
                TRADES.method, {"src_tid": record.get("tid"), "page_no": 0, "page_size": 1}
            )
            found.append(int(answer.get("total_count") or 0) > 0)
        return found


def _trade_of(record: Record) -> tuple[dict[str, Any], str]:
    """A mapped trade as trade_push takes it: request-level fields lifted off the lines, nulls left out."""
    lines = record.get("order_list") or []
    shop = str(lines[0].get("shop_no") or "") if lines and isinstance(lines[0], dict) else ""
    trade = {key: value for key, value in record.items() if value is not None and key != "order_list"}
    trade["order_list"] = [
        {k: v for k, v in line.items() if v is not None and k not in REQUEST_LEVEL}
        for line in lines
        if isinstance(line, dict)
    ]
    return trade, shop


def _failed(exc: UpstreamError, retryable: bool) -> PushOutcome:
    return PushOutcome(ok=False, answer=exc.problem(), error=exc.detail, retryable=retryable)


def _per_trade(trades: list[dict[str, Any]], message: str) -> list[PushOutcome]:
    """Lenient mode: the rejected trades are named in `message`; the others were stored."""
    try:
        rejected = {str(item.get("tid")): str(item.get("error")) for item in msgspec.json.decode(message)}
    except (msgspec.DecodeError, AttributeError, TypeError):
        error = f"trade_push refused the batch: {message}"
        return [
            PushOutcome(ok=False, answer={"code": CODE_TRADE_REJECTED, "message": message}, error=error)
        ] * len(trades)
    outcomes = []
    for trade in trades:
        tid = str(trade.get("tid") or "")
        if tid in rejected:
            answer = {"code": CODE_TRADE_REJECTED, "tid": tid, "error": rejected[tid]}
            outcomes.append(PushOutcome(ok=False, answer=answer, error=rejected[tid]))
        else:
            outcomes.append(PushOutcome(ok=True, answer={"code": 0, "tid": tid}))
    return outcomes
