"""Examples for the OpenAPI document: one per /v1 response, and the problems each operation may answer."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

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


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://unigate.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
        "request_id": "5f1c2d0e8a4b4f0c9d7e6a5b4c3d2e1f",
    }


PROBLEMS: dict[int, tuple[str, dict[str, Any]]] = {
    409: (
        "The first request with this Idempotency-Key is still running",
        _problem(409, "conflict", "Conflict", "a request with this Idempotency-Key is still being processed"),
    ),
    400: (
        "A bad input; `field` names it",
        _problem(
            400, "invalid_parameter", "Invalid parameter", "limit: Expected `int` <= 100", field="limit"
        ),
    ),
    401: (
        "Missing, unknown, expired or revoked key",
        _problem(401, "unauthorized", "Unauthorized", "the API key is unknown or has been revoked"),
    ),
    404: (
        "Unknown object",
        _problem(404, "not_found", "Not found", "no stockout 'CK000' in connection 'wdt-demo'"),
    ),
    422: (
        "Idempotency-Key reused with another body",
        _problem(
            422,
            "idempotency_key_reused",
            "Idempotency key reused with a different request",
            "this Idempotency-Key was used with a different request body; use a new key for a new request",
            field="Idempotency-Key",
        ),
    ),
    501: (
        "The connection's system cannot do this",
        _problem(
            501,
            "unsupported_operation",
            "Operation not supported by this connection",
            "connection 'wdt-demo' (wangdiantong) does not support express tracking",
        ),
    ),
    502: (
        "The backend refused, or is unreachable (`upstream_unavailable`)",
        _problem(
            502,
            "vendor_error",
            "The backend system refused the request",
            "wangdiantong answered 1040: 签名错误",
            vendor={"system": "wangdiantong", "code": "1040", "message": "签名错误"},
        ),
    ),
    504: (
        "The backend did not answer in time",
        _problem(504, "upstream_timeout", "Upstream timed out", "wangdiantong did not answer in time"),
    ),
}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem responses an operation documents, each with its example."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=PROBLEMS[status][0],
            media_type="application/problem+json",
            generate_examples=False,
            examples=[Example(summary=PROBLEMS[status][1]["code"], value=PROBLEMS[status][1])],
        )
        for status in statuses
    }


def ok(
    model: Any, example: dict[str, Any], status: int = 200, description: str = "OK"
) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=model,
            description=description,
            generate_examples=False,
            examples=[Example(summary="example", value=example)],
        )
    }
