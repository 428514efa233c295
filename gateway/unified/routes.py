"""Unified API v1 route handlers: translate HTTP into a connector call and back, nothing more."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.openapi.spec import Example, OpenAPIType
from litestar.params import Body, Parameter

from gateway.connectors.base import Connector, ListQuery, Page
from gateway.errors import InvalidParameter, NotFound
from gateway.runtime import Runtime
from gateway.store.snapshot import ConsumerEntry
from gateway.unified import idempotency
from gateway.unified.examples import (
    EVERY_V1,
    NEW_ORDER,
    ORDER,
    ORDER_PUSHED,
    STOCKOUT,
    TRACKING,
    V1Operation,
    ok,
    responses,
    security,
)
from gateway.unified.models import (
    NewOrder,
    Order,
    OrderPage,
    OrderPushed,
    OrderStatus,
    Stockout,
    StockoutPage,
    StockoutStatus,
    Tracking,
)
from policies import pii

LOCAL = ZoneInfo("Asia/Shanghai")
# How far updated_to may be ahead of this node's clock: callers' clocks differ from it by a little. A range
# reaching further into the future could not be walked whole: the walk reads a window's pages from the
# last down, safe while a record that changes leaves the window (its new time past updated_to); one that
# stays in it moves onto a page already read, and the caller's next range, starting at updated_to, would
# not have it either.
CLOCK_ALLOWANCE = timedelta(seconds=1)
STOCKOUT_DEFAULT_RANGE = timedelta(days=30)
ORDER_DEFAULT_RANGE = timedelta(days=1)
# The times a list range may name: a backend writes its times with four-digit years in its own zone, so
# the year 1 or 9999 in another zone cannot be sent at all (and no e-commerce record predates 1970).
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)

Connection = Annotated[
    str | None,
    Parameter(
        header="X-Connection",
        description="Connection to use; default: the application's default",
        required=False,
    ),
]
LIMIT_MAX, LIMIT_DEFAULT = 100, 20
# Taken as the text sent and read by `page_size` (both read paths): a number in any other spelling (1e1,
# 10.0, +5) is refused rather than read as whatever a float parser makes of it. Documented as the integer.
Limit = Annotated[
    str,
    Parameter(
        description=f"Items per page (1-{LIMIT_MAX})",
        schema_extra={
            "type": OpenAPIType.INTEGER,
            "minimum": 1,
            "maximum": LIMIT_MAX,
            "default": LIMIT_DEFAULT,
        },
    ),
]
Cursor = Annotated[
    str | None,
    Parameter(
        description="`next_cursor` of the previous page; send it alone or with the first page's filters "
        "(other filters, or another connection, are refused)",
        required=False,
    ),
]
Include = Annotated[
    str | None,
    Parameter(description="`remote_data` adds the vendor's raw record to each item", required=False),
]
Since = Annotated[
    datetime | None,
    Parameter(
        description="RFC 3339; without an offset, Asia/Shanghai time. Both bounds are inclusive, in whole "
        "seconds (the backends keep seconds); updated_to may not be later than now. "
        "Default: see the operation",
        required=False,
    ),
]
Shop = Annotated[str | None, Parameter(description="Shop code in the backend", required=False)]
# The statuses a list can filter on: those a backend can be asked for (Wangdiantong's stockout and trade
# queries). A record may also be `unknown`, `partially_shipped` or `refunded`, but asking for one of those
# is refused (400, `field: status`) by every backend, so the document does not offer them.
STOCKOUT_FILTERS = ("approved", "shipped", "completed", "cancelled", "exception")
ORDER_FILTERS = ("pending_payment", "partially_paid", "paid", "shipped", "completed", "cancelled")


def _status_filter(kind: str, values: tuple[str, ...]) -> Any:
    return Parameter(
        description=f"Only {kind} in this normalized status",
        required=False,
        schema_extra={"enum": [*values, None]},
    )


Warehouse = Annotated[str | None, Parameter(description="Warehouse code in the backend", required=False)]


def _consumer(request: Request[Any, Any, Any]) -> ConsumerEntry:
    return request.scope["state"]["consumer"]  # type: ignore[no-any-return]


def _guard(request: Request[Any, Any, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return guard(request.scope["state"], records)


def guard(state: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Receivers and remote_data masked for a caller whose scopes lack `pii:read` (policies/pii.py)."""
    if pii.may_read(state.get("granted_scopes")):
        return records
    return [pii.mask_record(record) for record in records]


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _connector(request: Request[Any, Any, Any]) -> Connector:
    """The connector of the connection the policy chain resolved and checked (X-Connection or the default)."""
    return _runtime(request).for_request(request.scope["state"])


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=LOCAL) if value is not None and value.tzinfo is None else value


def _within(name: str, value: datetime | None) -> datetime | None:
    value = _aware(value)
    if value is not None and not EARLIEST <= value < LATEST:
        raise InvalidParameter(name, f"{name} must be between 1970-01-01 and 9999-01-01")
    return value


def page_size(limit: str) -> int:
    """`limit` as sent: plain decimal digits (leading zeros allowed) from 1 to LIMIT_MAX, else refused."""
    digits = limit.lstrip("0")
    # Its length checked before int(): a long run of digits is refused, not converted (int() refuses 4300+).
    if not (
        limit.isascii() and limit.isdigit() and len(digits) <= 3 and 1 <= int(digits or "0") <= LIMIT_MAX
    ):
        raise InvalidParameter("limit", f"limit must be a whole number from 1 to {LIMIT_MAX}, in digits")
    return int(digits)


def _query(
    updated_from: datetime | None,
    updated_to: datetime | None,
    default_range: timedelta,
    **filters: Any,
) -> ListQuery:
    given_start = _within("updated_from", updated_from)
    now = datetime.now(LOCAL)
    end = _within("updated_to", updated_to) or now
    start = given_start or max(end - default_range, EARLIEST)
    if start > end:
        # Name only what the caller sent: an updated_from in the future alone is after the default end.
        detail = (
            "updated_from must not be after updated_to"
            if updated_to is not None
            else "updated_from is after updated_to, which defaults to now"
        )
        raise InvalidParameter("updated_from", detail)
    if end > now + CLOCK_ALLOWANCE:
        raise InvalidParameter(
            "updated_to",
            f"updated_to must not be later than now ({now.isoformat(timespec='seconds')} by the gateway's "
            "clock): a record changing after the walk passed it would be missed; leave updated_to out to "
            "list up to now",
        )
    return ListQuery(updated_from=start, updated_to=end, **filters)


def _include_raw(include: str | None) -> bool:
    if include is None:
        return False
    parts = {part.strip() for part in include.split(",") if part.strip()}
    if unknown := parts - {"remote_data"}:
        raise InvalidParameter(
            "include", f"include accepts only remote_data, not {', '.join(sorted(unknown))}"
        )
    if not parts:  # `include=` asked for nothing: not for the vendor's raw record
        raise InvalidParameter("include", "include is blank: give include=remote_data, or leave it out")
    return True


class ListParams(msgspec.Struct, frozen=True):
    """A list operation's query parameters, checked (by Litestar's signature, or gateway.unified.fast,
    which shares one per query string between requests: hence frozen)."""

    updated_from: datetime | None = None
    updated_to: datetime | None = None
    status: str | None = None
    shop: str | None = None
    warehouse: str | None = None
    limit: int = LIMIT_DEFAULT
    cursor: str | None = None
    include: str | None = None

    def query(self, default_range: timedelta, sent: frozenset[str] = frozenset()) -> ListQuery:
        """The canonical query; `sent` names the parameters the caller sent, which a cursor is held to."""
        return _query(
            self.updated_from,
            self.updated_to,
            default_range,
            status=self.status,
            shop=self.shop,
            warehouse=self.warehouse,
            limit=self.limit,
            include_remote_data=_include_raw(self.include),
            given=sent if self.cursor is not None else frozenset(),
        )


LIST_PARAMETERS = tuple(field.name for field in msgspec.structs.fields(ListParams))


def check_query_names(
    names: Iterable[str], takes: tuple[str, ...] = LIST_PARAMETERS, what: str = "list"
) -> None:
    """A parameter an operation (a list, unless `takes` says otherwise) does not take, or one given twice,
    is refused, not ignored: `?warehouse_code=X` would otherwise answer every warehouse's records to a
    caller who believes they filtered, and `?status=shipped&status=approved` only the first status.
    Checked after the known parameters' values; in name order, so both read paths name the same one first."""
    seen: set[str] = set()
    for name in sorted(names):
        if name not in takes:
            taken = f"it takes {', '.join(takes)}" if takes else "it takes none"
            raise InvalidParameter(name, f"{name}: this {what} has no such query parameter; {taken}")
        if name in seen:
            raise InvalidParameter(name, f"{name}: given more than once; a {what} takes one value of each")
        seen.add(name)


DEFAULT_RANGE = {"stockouts": STOCKOUT_DEFAULT_RANGE, "orders": ORDER_DEFAULT_RANGE}


READ_PARAMETERS = ("include",)  # what a single read (a stockout, an order) takes


def _sent(request: Request[Any, Any, Any]) -> list[str]:
    return [name for name, _ in request.query_params.multi_items()]


async def list_page(
    resource: str,
    runtime: Runtime,
    state: dict[str, Any],
    params: ListParams,
    sent: frozenset[str] = frozenset(),
) -> Page:
    """A page of canonical `resource` records (dicts) for the caller and through the connection the policy
    chain identified and checked (`state`); `sent` names the query parameters the caller sent."""
    connector = runtime.for_request(state)
    read = getattr(connector, f"list_{resource}")
    page: Page = await read(params.query(DEFAULT_RANGE[resource], sent), params.cursor)
    return Page(items=guard(state, page.items), next_cursor=page.next_cursor)


class StockoutController(Controller):
    path = "/v1/stockouts"
    tags = ["stockouts"]

    @get(
        "/",
        summary="List stockouts (sales outbound orders)",
        description="Stockouts updated in a time range (default: the 30 days up to `updated_to`, which is "
        "now by default), any range: the gateway walks the backend's windows and pages. Follow `next_cursor` "
        "until it is null; items come in the walk's order, not by time.",
        responses={
            **ok(StockoutPage, {"items": [STOCKOUT], "next_cursor": "eyJzdGFydCI6..."}),
            **responses(*EVERY_V1),
        },
        security=security("stockouts:read"),
        operation_class=V1Operation,
    )
    async def list_stockouts(
        self,
        request: Request[Any, Any, Any],
        x_connection: Connection = None,
        updated_from: Since = None,
        updated_to: Since = None,
        status: Annotated[StockoutStatus | None, _status_filter("stockouts", STOCKOUT_FILTERS)] = None,
        shop: Shop = None,
        warehouse: Warehouse = None,
        limit: Limit = str(LIMIT_DEFAULT),
        cursor: Cursor = None,
        include: Include = None,
    ) -> StockoutPage:
        size = page_size(limit)
        sent = _sent(request)
        check_query_names(sent)
        params = ListParams(updated_from, updated_to, status, shop, warehouse, size, cursor, include)
        page = await list_page(
            "stockouts", _runtime(request), request.scope["state"], params, frozenset(sent)
        )
        return StockoutPage(items=msgspec.convert(page.items, list[Stockout]), next_cursor=page.next_cursor)

    @get(
        "/{stockout_no:str}",
        summary="Read one stockout",
        responses={**ok(Stockout, STOCKOUT), **responses(*EVERY_V1, 404)},
        security=security("stockouts:read"),
        operation_class=V1Operation,
    )
    async def get_stockout(
        self,
        request: Request[Any, Any, Any],
        stockout_no: str,
        x_connection: Connection = None,
        include: Include = None,
    ) -> Stockout:
        check_query_names(_sent(request), READ_PARAMETERS, "read")
        connector = _connector(request)
        record = await connector.get_stockout(stockout_no, _include_raw(include))
        return msgspec.convert(_guard(request, [record])[0], Stockout)

    @get(
        "/{stockout_no:str}/tracking",
        summary="Express tracking of a stockout's parcel",
        description="Reads the stockout (`X-Connection`), then tracks its parcel through the tracking "
        "connection: `X-Tracking-Connection`, else the application's default for `logistics`. A stockout "
        "without a tracking number yet, or shipped with a carrier kuaidi100 does not know, is a 404.",
        responses={**ok(Tracking, TRACKING), **responses(*EVERY_V1, 404)},
        security=security("stockouts:read"),
        operation_class=V1Operation,
    )
    async def stockout_tracking(
        self,
        request: Request[Any, Any, Any],
        stockout_no: str,
        x_connection: Connection = None,
        x_tracking_connection: Annotated[
            str | None,
            Parameter(header="X-Tracking-Connection", required=False, description="Tracking connection"),
        ] = None,
    ) -> Tracking:
        check_query_names(_sent(request), (), "read")
        # Both connections were resolved and checked by the policy chain before any backend is called.
        runtime, state = _runtime(request), request.scope["state"]
        tracker = runtime.for_request(state, tracking=True)
        stockout = await runtime.for_request(state).get_stockout(stockout_no, False)
        if not stockout.get("tracking_no"):
            raise NotFound(
                f"stockout {stockout_no!r} has no tracking number yet (status {stockout['status']})"
            )
        if not stockout.get("carrier"):
            raise NotFound(
                f"stockout {stockout_no!r} ships with {stockout.get('carrier_name')!r}, which we cannot track"
            )
        receiver = stockout.get("receiver") or {}
        phone = receiver.get("mobile") or receiver.get("phone")
        return msgspec.convert(
            await tracker.track(stockout["carrier"], stockout["tracking_no"], phone), Tracking
        )


# Where msgspec says which value is at fault: "Expected `int`, got `str` - at `$.lines[0].quantity`".
ERROR_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_NEW_ORDER = msgspec.json.Decoder(NewOrder)  # strict: a "2" is not a quantity, nor "true" a boolean


def new_order(body: bytes) -> NewOrder:
    """The body of POST /v1/orders as a NewOrder, or the 400 naming what is wrong with it.

    msgspec decodes it straight into the model, strictly (Litestar's own path decodes any JSON, however
    deep, then converts leniently, turning "2" into 2); invalid UTF-8, which JSON cannot be, is refused
    before msgspec sees the bytes, as msgspec would raise it as a bare UnicodeDecodeError."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidParameter("body", f"body: not UTF-8 text (byte {exc.start}); JSON must be") from None
    try:
        order = _NEW_ORDER.decode(text)
    except msgspec.ValidationError as exc:
        # Said as Litestar says its own validation errors, so gateway.app names the field the same way.
        message, at = str(exc), ERROR_AT.search(str(exc))
        key = at.group(1) if at else ""
        problem = {"key": key, "message": message[: at.start()] if at else message, "source": "body"}
        raise ValidationException(str(exc), extra=[problem]) from None
    except msgspec.DecodeError as exc:
        raise InvalidParameter("body", f"body: {exc}") from None
    if not (order.receiver.mobile or order.receiver.phone):  # the backend refuses such an order
        raise InvalidParameter("receiver.mobile", "receiver.mobile: give receiver.mobile or receiver.phone")
    return order


class NewOrderRequest(Request[Any, Any, Any]):
    """POST /v1/orders' request: its JSON body is read by `new_order`, not by Litestar's decoder."""

    async def body(self) -> bytes:
        body = await super().body()
        if not body:  # Litestar would skip decoding it, then say only that `data` is missing
            raise InvalidParameter("body", "body: the request body is empty; send the order as JSON")
        return body

    async def json(self) -> Any:
        return new_order(await self.body())


class OrderController(Controller):
    path = "/v1/orders"
    tags = ["orders"]

    @get(
        "/",
        summary="List orders",
        description="Orders modified in a time range (default: the 24 hours up to `updated_to`, which is now "
        "by default). Follow `next_cursor` until it is null; items come in the walk's order, not by time.",
        responses={**ok(OrderPage, {"items": [ORDER], "next_cursor": None}), **responses(*EVERY_V1)},
        security=security("orders:read"),
        operation_class=V1Operation,
    )
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        x_connection: Connection = None,
        updated_from: Since = None,
        updated_to: Since = None,
        status: Annotated[OrderStatus | None, _status_filter("orders", ORDER_FILTERS)] = None,
        shop: Shop = None,
        warehouse: Warehouse = None,
        limit: Limit = str(LIMIT_DEFAULT),
        cursor: Cursor = None,
        include: Include = None,
    ) -> OrderPage:
        size = page_size(limit)
        sent = _sent(request)
        check_query_names(sent)
        params = ListParams(updated_from, updated_to, status, shop, warehouse, size, cursor, include)
        page = await list_page("orders", _runtime(request), request.scope["state"], params, frozenset(sent))
        return OrderPage(items=msgspec.convert(page.items, list[Order]), next_cursor=page.next_cursor)

    @get(
        "/{order_no:str}",
        summary="Read one order",
        responses={**ok(Order, ORDER), **responses(*EVERY_V1, 404)},
        security=security("orders:read"),
        operation_class=V1Operation,
    )
    async def get_order(
        self,
        request: Request[Any, Any, Any],
        order_no: str,
        x_connection: Connection = None,
        include: Include = None,
    ) -> Order:
        check_query_names(_sent(request), READ_PARAMETERS, "read")
        connector = _connector(request)
        record = await connector.get_order(order_no, _include_raw(include))
        return msgspec.convert(_guard(request, [record])[0], Order)

    @post(
        "/",
        summary="Push an order into the backend",
        description="An order the backend did not have answers 201; one it had answers 200, with "
        "`updated` saying whether the push changed it. Send `Idempotency-Key` to make retries safe: a replay "
        "returns the first answer (with `Idempotent-Replayed: true`) and pushes nothing; the same key with "
        "another body is refused.",
        status_code=201,
        responses={
            **ok(
                OrderPushed,
                ORDER_PUSHED,
                201,
                "Pushed: a new order in the backend; `Location` is its GET /v1/orders/{order_no} when "
                "`order_no` is known",
            ),
            **ok(
                OrderPushed,
                {**ORDER_PUSHED, "created": False, "updated": True},
                200,
                "Pushed: the backend had this order; `updated` says whether the push changed it",
            ),
            **responses(*EVERY_V1, 409, 413, 422),
        },
        security=security("orders:write"),
        operation_class=V1Operation,
        request_class=NewOrderRequest,
    )
    async def create_order(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[NewOrder, Body(examples=[Example(summary="a paid order", value=NEW_ORDER)])],
        x_connection: Connection = None,
        idempotency_key: Annotated[
            str | None,
            Parameter(
                header="Idempotency-Key",
                required=False,
                description="Makes retries safe: the same key (per application and connection) with the same "
                "body replays the first answer",
                # Documented only: gateway.unified.idempotency checks it, with its own message.
                schema_extra={"minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
            ),
        ] = None,
    ) -> Response[OrderPushed]:
        consumer = _consumer(request)
        connector = _connector(request)
        order = msgspec.to_builtins(data)

        async def push() -> tuple[int, Any]:
            pushed = await connector.create_order(order)
            # 201 only for an order the backend did not have: a push of one it had (the upsert trade_push
            # is, unchanged or not) created nothing.
            return (201 if pushed["created"] else 200), pushed

        outcome = await idempotency.once(
            scope=f"{consumer.id}:{connector.name}:orders", key=idempotency_key, request=order, run=push
        )
        pushed = msgspec.convert(outcome.body, OrderPushed)
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        if pushed.order_no is not None:
            headers["Location"] = f"{self.path}/{quote(pushed.order_no, safe='')}"
        return Response(pushed, status_code=outcome.status, headers=headers)


TRACKING_PARAMETERS = ("carrier", "tracking_no", "phone")


class LogisticsController(Controller):
    path = "/v1/logistics"
    tags = ["logistics"]

    @get(
        "/tracking",
        summary="Express tracking of a parcel",
        responses={**ok(Tracking, TRACKING), **responses(*EVERY_V1, 404)},
        security=security("logistics:read"),
        operation_class=V1Operation,
    )
    async def tracking(
        self,
        request: Request[Any, Any, Any],
        carrier: Annotated[
            str, Parameter(min_length=1, description="Carrier code (kuaidi100 `com`), e.g. zhongtong")
        ],
        tracking_no: Annotated[str, Parameter(min_length=1, max_length=32, description="Waybill number")],
        phone: Annotated[
            str | None, Parameter(required=False, description="Receiver phone (SF, ZTO)")
        ] = None,
        x_connection: Connection = None,
    ) -> Tracking:
        check_query_names(
            (name for name, _ in request.query_params.multi_items()), TRACKING_PARAMETERS, "lookup"
        )
        connector = _connector(request)
        return msgspec.convert(await connector.track(carrier, tracking_no, phone), Tracking)


ROUTES = [StockoutController, OrderController, LogisticsController]
