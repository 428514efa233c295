"""Canonical records of the unified API v1: the same JSON whatever backend is behind it.

Money is a decimal string, times are RFC 3339 with offset, statuses are normalized enums
with the vendor's raw value kept in `remote_status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Money = Annotated[str, msgspec.Meta(pattern=r"^-?\d+(\.\d+)?$", examples=["12.50"])]
Time = Annotated[str, msgspec.Meta(examples=["2026-03-01T10:00:00+08:00"])]

StockoutStatus = Literal["approved", "shipped", "completed", "cancelled", "exception", "unknown"]
# What an order pushed into a backend may be: every status but "unknown", which only a backend can say.
NewOrderStatus = Literal[
    "pending_payment",
    "partially_paid",
    "paid",
    "partially_shipped",
    "shipped",
    "completed",
    "refunded",
    "cancelled",
]
OrderStatus = Literal[NewOrderStatus, "unknown"]
# An order line's refund, as POST /v1/orders takes it and the order reads answer it.
NewRefundStatus = Literal["none", "cancelled", "requested", "awaiting_return", "awaiting_receipt", "refunded"]
RefundStatus = Literal[NewRefundStatus, "unknown"]
# A time a caller sends: RFC 3339, checked when the body is read (without an offset: Asia/Shanghai).
NewTime = Annotated[datetime, msgspec.Meta(examples=["2026-03-01T10:00:00+08:00"])]
TrackingStatus = Literal[
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
    "returning",
    "returned",
    "redirected",
    "refused",
    "customs",
    "unknown",
]


class Receiver(msgspec.Struct, kw_only=True):
    name: str | None = None
    mobile: str | None = None
    phone: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address: str | None = None
    zip: str | None = None


class StockoutLine(msgspec.Struct, kw_only=True):
    line_id: str | None
    sku: str | None
    product_code: str | None
    name: str | None
    variant: str | None
    barcode: str | None
    quantity: int | None
    unit_price: Money | None
    amount: Money | None
    discount: Money | None
    is_gift: bool | None
    platform_order_id: str | None
    platform_line_id: str | None


class Stockout(msgspec.Struct, kw_only=True):
    connection: str
    remote_id: str
    stockout_no: str
    order_no: str | None
    platform_order_ids: list[str]
    status: StockoutStatus
    remote_status: str | None
    shop_code: str | None
    shop_name: str | None
    warehouse_code: str | None
    warehouse_name: str | None
    carrier: str | None  # kuaidi100 carrier code (zhongtong, shunfeng, ...)
    carrier_name: str | None
    tracking_no: str | None
    receiver: Receiver
    currency: str
    goods_amount: Money | None
    discount: Money | None
    shipping_fee: Money | None
    paid: Money | None
    receivable: Money | None
    weight: str | None
    buyer_message: str | None
    remark: str | None
    ordered_at: Time | None
    paid_at: Time | None
    shipped_at: Time | None
    created_at: Time | None
    updated_at: Time | None
    lines: list[StockoutLine]
    remote_data: dict[str, Any] | None = None


class OrderLine(msgspec.Struct, kw_only=True):
    line_id: str | None
    sku: str | None
    product_code: str | None
    name: str | None
    variant: str | None
    quantity: int | None
    unit_price: Money | None
    adjust_amount: Money | None
    discount: Money | None
    share_discount: Money | None
    refund_status: RefundStatus | None


class Order(msgspec.Struct, kw_only=True):
    connection: str
    remote_id: str
    order_no: str
    platform_order_ids: list[str]
    status: OrderStatus
    remote_status: str | None
    shop_code: str | None
    warehouse_code: str | None
    buyer_nick: str | None
    receiver: Receiver
    carrier_name: str | None
    tracking_no: str | None
    currency: str
    paid: Money | None
    shipping_fee: Money | None
    other_amount: Money | None
    buyer_message: str | None
    seller_memo: str | None
    ordered_at: Time | None
    paid_at: Time | None
    updated_at: Time | None
    lines: list[OrderLine]
    remote_data: dict[str, Any] | None = None


# What a caller may send in a NewOrder. The backend's own limits are kept where Wangdiantong states them
# (trade_push: tid, oid, receiver_mobile and receiver_telno at most 40 characters); for the rest the vendor
# says nothing, so the bounds are generous ones no real order reaches, there to refuse garbage (a 5,000
# character name, a number past int64) with a 400 here instead of a failure further on.
# Money: a decimal string with at most 2 places (a fen) and 12 digits before the point, so the vendor's
# `paid` (Σ price × quantity over up to MAX_LINES lines) stays a 4-place decimal the backend can hold.
NewMoney = Annotated[str, msgspec.Meta(pattern=r"^-?\d{1,12}(\.\d{1,2})?$", examples=["12.50"])]
VENDOR_ID_LENGTH = 40  # Wangdiantong's tid and oid
CODE_LENGTH = 64  # shop, warehouse and product codes (not stated by the vendor)
NAME_LENGTH = 200  # names and nicks (not stated by the vendor)
TEXT_LENGTH = 1000  # messages, memos, remarks and addresses (not stated by the vendor)
MAX_QUANTITY = 99_999_999  # one line of one order (not stated by the vendor)
MAX_LINES = 500  # lines in one order (not stated by the vendor)


def _text(max_length: int, min_length: int = 0) -> msgspec.Meta:
    return msgspec.Meta(min_length=min_length, max_length=max_length)


NonEmpty = Annotated[str, _text(NAME_LENGTH, 1)]
Code = Annotated[str, _text(CODE_LENGTH, 1)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
# A mobile number: digits, optionally a leading + and spaces or hyphens between them (+86 138-0013-8000).
Mobile = Annotated[
    str, msgspec.Meta(max_length=VENDOR_ID_LENGTH, pattern=r"^\+?\d[\d -]{3,}\d$", examples=["13800138000"])
]
# A landline is written too many ways (010-62345678转123, (010) 6234 5678) for a pattern; only its length.
Phone = Annotated[str, _text(VENDOR_ID_LENGTH)]


class NewReceiver(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where the order goes. The backend needs a number to call: `mobile` or `phone` (or both)."""

    name: NonEmpty
    mobile: Mobile | None = None
    phone: Phone | None = None
    province: NonEmpty
    city: NonEmpty
    district: NonEmpty
    address: Annotated[str, _text(TEXT_LENGTH, 1)]
    zip: Annotated[str, _text(20)] | None = None


class NewOrderLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    line_id: Annotated[str, _text(VENDOR_ID_LENGTH, 1)]
    sku: Code
    product_code: Code | None = None
    product_id: Code | None = None
    name: Annotated[str, _text(NAME_LENGTH)] | None = None
    variant: Annotated[str, _text(NAME_LENGTH)] | None = None
    quantity: Quantity
    unit_price: NewMoney
    adjust_amount: NewMoney = "0"
    discount: NewMoney = "0"
    share_discount: NewMoney = "0"
    refund_status: NewRefundStatus = "none"
    remark: Annotated[str, _text(TEXT_LENGTH)] | None = None


class NewOrder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An order pushed into a backend (POST /v1/orders)."""

    platform_order_id: Annotated[str, _text(VENDOR_ID_LENGTH, 1)]
    shop_code: Code
    status: NewOrderStatus = "paid"
    cash_on_delivery: bool = False
    ordered_at: NewTime
    paid_at: NewTime | None = None
    buyer_nick: Annotated[str, _text(NAME_LENGTH)] | None = None
    buyer_message: Annotated[str, _text(TEXT_LENGTH)] | None = None
    seller_memo: Annotated[str, _text(TEXT_LENGTH)] | None = None
    warehouse_code: Code | None = None
    receiver: NewReceiver
    shipping_fee: NewMoney = "0"
    other_amount: NewMoney = "0"
    lines: Annotated[list[NewOrderLine], msgspec.Meta(min_length=1, max_length=MAX_LINES)]


class OrderPushed(msgspec.Struct, kw_only=True):
    connection: str
    platform_order_id: str
    # The backend's number for it (GET /v1/orders/{order_no}); null when the backend could not be asked
    # for it right after the push (the push itself succeeded).
    order_no: str | None = None
    created: bool
    updated: bool


class TrackingEvent(msgspec.Struct, kw_only=True):
    time: Time | None
    description: str | None
    location: str | None
    status_code: str | None


class Tracking(msgspec.Struct, kw_only=True):
    connection: str
    carrier: str
    tracking_no: str
    status: TrackingStatus
    remote_status: str | None
    delivered: bool
    events: list[TrackingEvent]
    remote_data: dict[str, Any] | None = None


class StockoutPage(msgspec.Struct):
    items: list[Stockout]
    next_cursor: str | None


class OrderPage(msgspec.Struct):
    items: list[Order]
    next_cursor: str | None


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem, as every error is answered (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    field: str | None = None
    vendor: dict[str, str] | None = None
    connection: str | None = None  # the connection a backend failure or an unsupported operation is about
    required_scope: str | None = None  # insufficient_scope: the scope the call needs
