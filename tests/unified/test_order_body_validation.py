"""POST /v1/orders refuses, before anything is pushed, a body the backend could not take: malformed JSON,
values of the wrong type or past their bounds, a receiver nobody can call; each a 400 naming the field."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.conftest import Simulators
from tests.unified.test_orders import TARGET, _trades, new_order

JSON = {"content-type": "application/json", **TARGET}


def _refused(response: httpx.Response, field: str) -> str:
    """The detail of a 400 invalid_parameter problem naming `field`."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid_parameter", field)
    assert body["request_id"] == response.headers["x-request-id"]
    return str(body["detail"])


@pytest.mark.parametrize("idempotent", [False, True])
@pytest.mark.parametrize(
    ("sent", "field", "said"),
    [
        (b'{"a":"\xff"}', "body", "not UTF-8"),  # was a 500: UnicodeDecodeError in Litestar's extractor
        (b"\xff\xfe{}", "body", "not UTF-8"),
        (b"[" * 100_000, "body", "Expected `object`, got `array`"),  # was a 500: RecursionError
        (b'{"platform_order_id": ' + b"[" * 100_000, "platform_order_id", "Expected `str`, got `array`"),
        (b"{not json", "body", "JSON is malformed"),
    ],
)
async def test_a_body_that_is_not_json_is_a_400_naming_the_body(
    client: httpx.AsyncClient, sent: bytes, field: str, said: str, idempotent: bool
) -> None:
    headers = {**JSON, "Idempotency-Key": f"bad-{uuid.uuid4()}"} if idempotent else JSON
    detail = _refused(await client.post("/v1/orders", content=sent, headers=headers), field)
    assert detail.startswith(f"{field}: ") and said in detail
    assert "Error" not in detail  # no Python exception names


async def test_an_empty_body_is_refused_in_plain_words(client: httpx.AsyncClient) -> None:
    detail = _refused(await client.post("/v1/orders", content=b"", headers=JSON), "body")
    assert detail == "body: the request body is empty; send the order as JSON"


def _line(**change: Any) -> dict[str, Any]:
    return {"line_id": "1", "sku": "TS-WHT-XL", "quantity": 2, "unit_price": "59.90", **change}


def _with_receiver(**change: Any) -> dict[str, Any]:
    order = new_order()
    order["receiver"].update(change)
    return order


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (new_order(lines=[_line(quantity="2")]), "lines[0].quantity"),  # no string-to-int conversion
        (new_order(lines=[_line(quantity=2.0)]), "lines[0].quantity"),
        (new_order(lines=[_line(quantity=99999999999999999999)]), "lines[0].quantity"),  # beyond int64
        (new_order(lines=[_line(quantity=100_000_000)]), "lines[0].quantity"),
        (new_order(lines=[_line(unit_price="59.999")]), "lines[0].unit_price"),  # money has 2 places
        (new_order(lines=[_line(unit_price=59.9)]), "lines[0].unit_price"),  # money is a string
        (new_order(lines=[_line(unit_price="9" * 40)]), "lines[0].unit_price"),  # was field body, "paid"
        (new_order(lines=[_line(discount="1e3")]), "lines[0].discount"),
        (new_order(shipping_fee="8.001"), "shipping_fee"),
        (new_order(cash_on_delivery="true"), "cash_on_delivery"),
        (new_order(lines=[_line(sku="S" * 500)]), "lines[0].sku"),
        (new_order(lines=[_line(name="N" * 500)]), "lines[0].name"),
        (new_order(lines=[_line()] * 501), "lines"),
        (new_order(buyer_message="m" * 5000), "buyer_message"),
        (new_order(seller_memo="m" * 5000), "seller_memo"),
        (new_order(shop_code="s" * 500), "shop_code"),
        (new_order(platform_order_id="T" * 41), "platform_order_id"),  # the vendor's tid: at most 40
        (_with_receiver(name="n" * 500), "receiver.name"),
        (_with_receiver(address="a" * 5000), "receiver.address"),
        (_with_receiver(mobile="abc"), "receiver.mobile"),
        (_with_receiver(mobile="1" * 41), "receiver.mobile"),  # the vendor's receiver_mobile: at most 40
        (_with_receiver(phone="1" * 41), "receiver.phone"),
    ],
)
async def test_a_value_the_schema_does_not_allow_is_refused_and_nothing_is_pushed(
    client: httpx.AsyncClient, simulators: Simulators, order: dict[str, Any], field: str
) -> None:
    count_before = len(_trades(simulators))
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    detail = _refused(response, field)
    assert detail.startswith(f"{field}: ")
    assert "formula" not in detail
    assert len(_trades(simulators)) == count_before
    assert order["platform_order_id"] not in _trades(simulators)


async def test_a_receiver_with_neither_mobile_nor_phone_is_refused_at_the_gateway(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    order = new_order()
    del order["receiver"]["mobile"]
    order["receiver"].pop("phone", None)
    detail = _refused(await client.post("/v1/orders", json=order, headers=TARGET), "receiver.mobile")
    assert detail == "receiver.mobile: give receiver.mobile or receiver.phone"
    assert "vendor" not in (await client.post("/v1/orders", json=order, headers=TARGET)).json()
    assert order["platform_order_id"] not in _trades(simulators)


@pytest.mark.parametrize(
    "receiver",
    [
        {"mobile": "+86 138-0013-8000"},
        {"mobile": None, "phone": "010-62345678"},
        {"mobile": "13800138000", "phone": ""},
    ],
)
async def test_orders_at_the_bounds_are_pushed(
    client: httpx.AsyncClient, simulators: Simulators, receiver: dict[str, Any]
) -> None:
    order = new_order(
        platform_order_id=f"T{uuid.uuid4().hex}"[:30],
        buyer_message="m" * 1000,
        lines=[
            _line(quantity=99_999_999, unit_price="999999999999.99"),
            _line(line_id="2", unit_price="0.5"),
        ],
    )
    order["receiver"].update(receiver)
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    assert response.status_code == 201, response.text
    pushed = simulators.wdt_target.app[wdt_sim.STATE_KEY].pushed[order["platform_order_id"]]
    assert pushed.trade["order_list"][0]["num"] == "99999999"


async def test_the_largest_order_the_bounds_allow_still_adds_up_at_the_backend(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """Every line at the most quantity and price, as many lines as allowed: the `paid` the gateway works
    out for the vendor stays a number it can send (a huge unit_price used to fail there, naming `body`)."""
    lines = [_line(line_id=str(n), quantity=99_999_999, unit_price="999999999999.99") for n in range(500)]
    order = new_order(
        platform_order_id=f"T{uuid.uuid4().hex[:20]}", shipping_fee="999999999999.99", lines=lines
    )
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    assert response.status_code == 201, response.text
    pushed = simulators.wdt_target.app[wdt_sim.STATE_KEY].pushed[order["platform_order_id"]]
    most = Decimal("999999999999.99")
    assert Decimal(pushed.trade["paid"]) == most * 99_999_999 * 500 + most
