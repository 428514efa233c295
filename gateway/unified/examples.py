"""Examples for the OpenAPI document: one per /v1 response, and the problems each operation may answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema

from gateway.errors import (
    CircuitOpen,
    Conflict,
    ConnectionNotGranted,
    IdempotencyConflict,
    InsufficientScope,
    InvalidParameter,
    IpForbidden,
    NotFound,
    NotInPlan,
    NotSubscribed,
    Overloaded,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    UnigateError,
    UnsupportedOperation,
    UpstreamBusy,
    UpstreamError,
    UpstreamTimeout,
    VendorError,
    VendorNotFound,
    problem_json,
)
from gateway.unified.models import Problem

RECEIVER = {
    "name": "肖敏",
    "mobile": "13550983131",
    "phone": "",
    "country": "CN",
    "province": "福建省",
    "city": "福州市",
    "district": "鼓楼区",
    "address": "人民路74号万科城市花园18栋3单元2501室",
    "zip": "350000",
}

STOCKOUT = {
    "connection": "wdt-demo",
    "remote_id": "300026",
    "stockout_no": "CK2026103000026",
    "order_no": "JY2026103000026",
    "platform_order_ids": ["365503111288"],
    "status": "shipped",
    "remote_status": "95",
    "shop_code": "jd-001",
    "shop_name": "京东旗舰店",
    "warehouse_code": "SHJD01",
    "warehouse_name": "上海嘉定仓",
    "carrier": "yuantong",
    "carrier_name": "圆通速递",
    "tracking_no": "YT4770680088903",
    "receiver": RECEIVER,
    "currency": "CNY",
    "goods_amount": "558.00",
    "discount": "0.00",
    "shipping_fee": "8.00",
    "paid": "566.00",
    "receivable": "566.00",
    "weight": "5.4000",
    "buyer_message": "",
    "remark": "",
    "ordered_at": "2026-10-30T16:30:18+08:00",
    "paid_at": "2026-10-30T16:36:44+08:00",
    "shipped_at": "2026-10-31T01:19:56+08:00",
    "created_at": "2026-10-30T22:49:46+08:00",
    "updated_at": "2026-10-31T01:37:31+08:00",
    "lines": [
        {
            "line_id": "1000251",
            "sku": "XLX1008-01",
            "product_code": "XLX1008",
            "name": "20寸万向轮行李箱",
            "variant": "太空灰 20寸",
            "barcode": "6936229335873",
            "quantity": 1,
            "unit_price": "299.00",
            "amount": "299.00",
            "discount": "0.00",
            "is_gift": False,
            "platform_order_id": "365503111288",
            "platform_line_id": "36550311128801",
        }
    ],
    "remote_data": None,
}

ORDER = {
    "connection": "wdt-demo",
    "remote_id": "JY2026103000026",
    "order_no": "JY2026103000026",
    "platform_order_ids": ["365503111288"],
    "status": "shipped",
    "remote_status": "95",
    "shop_code": "jd-001",
    "warehouse_code": "SHJD01",
    "buyer_nick": "xiaomin88",
    "receiver": RECEIVER,
    "carrier_name": "圆通速递",
    "tracking_no": "YT4770680088903",
    "currency": "CNY",
    "paid": "566.00",
    "shipping_fee": "8.00",
    "other_amount": "0.00",
    "buyer_message": "",
    "seller_memo": "",
    "ordered_at": "2026-10-30T16:30:18+08:00",
    "paid_at": "2026-10-30T16:36:44+08:00",
    "updated_at": "2026-10-30T22:47:02+08:00",
    "lines": [
        {
            "line_id": "36550311128801",
            "sku": "XLX1008-01",
            "product_code": "XLX1008",
            "name": "20寸万向轮行李箱",
            "variant": "太空灰 20寸",
            "quantity": 1,
            "unit_price": "299.00",
            "adjust_amount": "0.00",
            "discount": "0.00",
            "share_discount": "0.00",
            "refund_status": "0",
        }
    ],
    "remote_data": None,
}

NEW_ORDER = {
    "platform_order_id": "T20260301000123",
    "shop_code": "tmall-001",
    "status": "paid",
    "ordered_at": "2026-03-01T10:00:00+08:00",
    "paid_at": "2026-03-01T10:05:00+08:00",
    "buyer_nick": "小王",
    "receiver": {
        "name": "王小明",
        "mobile": "13800138000",
        "province": "上海市",
        "city": "上海市",
        "district": "浦东新区",
        "address": "世纪大道100号",
    },
    "shipping_fee": "8.00",
    "lines": [
        {"line_id": "1", "sku": "TS-WHT-XL", "name": "纯棉短袖T恤", "quantity": 2, "unit_price": "59.90"}
    ],
}

ORDER_PUSHED = {
    "connection": "wdt-demo",
    "platform_order_id": "T20260301000123",
    "order_no": "JY2026030100123",
    "created": True,
    "updated": False,
}

TRACKING = {
    "connection": "kd100-demo",
    "carrier": "yuantong",
    "tracking_no": "YT4770680088903",
    "status": "delivered",
    "remote_status": "3",
    "delivered": True,
    "events": [
        {
            "time": "2026-11-01T11:02:40+08:00",
            "description": "[福州市]您的快件已签收,签收人:本人",
            "location": "福建,福州市,鼓楼区",
            "status_code": "301",
        },
        {
            "time": "2026-11-01T08:13:47+08:00",
            "description": "[福州市]【福州鼓楼营业部】的派件员正在为您派件",
            "location": "福建,福州市,鼓楼区",
            "status_code": "5",
        },
    ],
    "remote_data": None,
}


REQUEST_ID = "5f1c2d0e8a4b4f0c9d7e6a5b4c3d2e1f"


def _answer(error: UnigateError) -> dict[str, Any]:
    """The body the gateway sends for `error`: built by the same code, so an example cannot drift from it."""
    return msgspec.json.decode(problem_json(error, REQUEST_ID))


_WDT = {"system": "wangdiantong", "connection": "wdt-demo"}
# Per status: what the response means, and an example of every problem `code` an operation may answer
# with it. Headers the problem carries besides X-Request-ID (Retry-After, WWW-Authenticate) are in HEADERS.
PROBLEMS: dict[int, tuple[str, list[UnigateError]]] = {
    400: (
        "A bad input; `field` names it (a query or path parameter, a header such as `X-Connection`, or the "
        "body's field as a dotted path)",
        [
            InvalidParameter("limit", "limit: Expected `int` <= 100"),
            InvalidParameter("X-Connection", "there is no connection named 'wdt-mian'"),
        ],
    ),
    401: (
        "Missing, unknown, expired or revoked key or token; suspended application",
        [Unauthorized("the API key is unknown or has been revoked")],
    ),
    403: (
        "The policies refuse the call: no active subscription to this API, an operation the plan leaves "
        "out, a token without the scope, an address the application's IP rules deny, or a connection "
        "(`X-Connection`, or the application's default) that is neither open nor granted to the application "
        "(docs/policies.md)",
        [
            ConnectionNotGranted(
                "this application may not use the connection 'wdt-main' named in X-Connection: "
                "ask an admin to grant it",
                field="X-Connection",
            ),
            NotSubscribed("demo-app is not subscribed to the stockouts API"),
            NotInPlan("the plan 'basic' does not include orders:write"),
            InsufficientScope(
                "this call needs the scope 'orders:write'; the token has not got it", scope="orders:write"
            ),
            IpForbidden("calls from 203.0.113.7 are denied for this application"),
        ],
    ),
    404: (
        "Unknown object",
        [
            NotFound("no stockout 'CK000' in connection 'wdt-demo'"),
            VendorNotFound(system="kuaidi100", vendor_code="500", message="查询无结果，请隔段时间再查"),
        ],
    ),
    409: (
        "The first request with this Idempotency-Key is still running",
        [Conflict("a request with this Idempotency-Key is still being processed; retry shortly")],
    ),
    413: (
        "The body is larger than the API accepts (`UNIGATE_MAX_BODY_BYTES`, or the API's own cap)",
        [PayloadTooLarge("the body is 2097152 bytes; the orders API accepts at most 1048576")],
    ),
    422: (
        "Idempotency-Key reused with another body",
        [
            IdempotencyConflict(
                "this Idempotency-Key was used with a different request body; "
                "use a new key for a new request",
                field="Idempotency-Key",
            )
        ],
    ),
    429: (
        "A rate limit or quota of the plan is used up; `Retry-After` says when to call again",
        [
            RateLimited("the limit of 20 calls per second is reached; retry after 1 s", retry_after=1),
            QuotaExceeded(
                "the limit of 50000 calls per day is reached; retry after 21134 s", retry_after=21134
            ),
        ],
    ),
    501: (
        "The connection's system cannot do this",
        [
            UnsupportedOperation(
                "connection 'wdt-demo' (wangdiantong) does not support express tracking",
                connection="wdt-demo",
            )
        ],
    ),
    502: (
        "The backend refused (`vendor_error`, with the vendor's own code), or is unreachable or answered "
        "garbage (`upstream_unavailable`)",
        [
            VendorError(system="wangdiantong", vendor_code="1040", message="签名错误"),
            UpstreamError("wangdiantong is unreachable: ConnectionRefusedError", **_WDT),
        ],
    ),
    503: (
        "This node is at capacity (`overloaded`), the connection's circuit breaker is open "
        "(`upstream_unavailable`) or the backend's own call cap is used up (`upstream_busy`); "
        "`Retry-After` says when to call again",
        [
            Overloaded(
                "the gateway is at capacity (256 requests in flight): no room for it within the wait bound; "
                "retry after the time in Retry-After",
                retry_after=2,
            ),
            CircuitOpen(
                "wdt-demo is failing; calls are paused (circuit breaker open)", retry_after=30, **_WDT
            ),
            UpstreamBusy("wdt-demo is at its cap of 5 calls a second", retry_after=1, **_WDT),
        ],
    ),
    504: (
        "The backend did not answer in time",
        [UpstreamTimeout("wangdiantong did not answer in time (10s)", **_WDT)],
    ),
}
# What every /v1 operation may answer, whatever it does: the policy chain's refusals (docs/policies.md),
# a bad X-Connection, a connection of a system that cannot do it, and a backend that fails.
EVERY_V1 = (400, 401, 403, 429, 501, 502, 503, 504)


def _header(description: str, kind: str = "string") -> OpenAPIHeader:
    return OpenAPIHeader(schema=Schema(type=OpenAPIType(kind)), description=description)


REQUEST_ID_HEADER = _header(
    "The request's id: yours if you sent `X-Request-ID` (1-128 of letters, digits and `._:-`), else a new one"
)
# On every answer to a call that reached the rate limit (docs/policies.md): all but the refusals before it.
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("The tightest limit or quota of the plan for this call", "integer"),
    "RateLimit-Remaining": _header("What is left of it after this call", "integer"),
    "RateLimit-Reset": _header("Seconds until it has room again", "integer"),
}
BEFORE_RATE_LIMIT = ("401", "403", "413")
HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "401": {
        "WWW-Authenticate": _header(
            '`Bearer realm="unigate"`; with `, error="invalid_token"` when the key or token sent is not good '
            "(unknown, revoked, expired, or its application suspended)"
        )
    },
    "429": {"Retry-After": _header("Seconds to wait before calling again", "integer")},
    "503": {"Retry-After": _header("Seconds to wait before calling again", "integer")},
}


@dataclass
class V1Operation(Operation):
    """A /v1 operation with the headers its answers carry (Litestar's ResponseSpec cannot say them)."""

    def __post_init__(self) -> None:
        for status, response in (self.responses or {}).items():
            if not isinstance(response, OpenAPIResponse):
                continue
            headers = dict(response.headers or {})
            headers.setdefault("X-Request-ID", REQUEST_ID_HEADER)
            if status not in BEFORE_RATE_LIMIT:
                headers.update(RATE_LIMIT_HEADERS)
            headers.update(HEADERS.get(status, {}))
            if status.startswith("2") and self.request_body is not None:
                headers["Idempotent-Replayed"] = _header(
                    "`true`: the stored answer to an earlier request with the same Idempotency-Key"
                )
            response.headers = headers


@dataclass
class AsAnswered(Example):
    """An example whose value is shown as the gateway sends it: Litestar drops every null from an example,
    which would hide `"next_cursor": null` and `"remote_data": null` from the answers they are part of."""

    def to_schema(self) -> dict[str, Any]:
        return {**super().to_schema(), "value": self.value}


def _summary(error: UnigateError) -> str:
    field = error.extra.get("field")
    return f"{error.code} ({field})" if field else error.code


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem responses an operation documents, each with an example of every code it may carry."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=PROBLEMS[status][0],
            media_type="application/problem+json",
            generate_examples=False,
            examples=[
                AsAnswered(summary=_summary(error), value=_answer(error)) for error in PROBLEMS[status][1]
            ],
        )
        for status in sorted({*statuses})
    }


def security(scope: str) -> list[dict[str, list[str]]]:
    """A /v1 operation's ways in: an API key (either header) or an OAuth2 token carrying `scope`."""
    return [{"apiKey": []}, {"apiKeyHeader": []}, {"oauth2": [scope]}]


def ok(
    model: Any, example: dict[str, Any], status: int = 200, description: str = "OK"
) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=model,
            description=description,
            generate_examples=False,
            examples=[AsAnswered(summary="example", value=example)],
        )
    }
