"""Orders: listing walks 60-minute vendor windows; POST pushes through trade_push, idempotently."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.connectors.simdata import generate_trades, parse_time
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.unified.examples import NEW_ORDER
from tests.conftest import SEED, Simulators
from tests.unified.walk import walk, walk_pages

TARGET = {"X-Connection": "wdt-target"}


def new_order(**overrides: Any) -> dict[str, Any]:
    """The documented example order, made unique, with two lines (one discounted)."""
    order = copy.deepcopy(NEW_ORDER)
    order["platform_order_id"] = f"T{uuid.uuid4().hex[:20]}"
    order["lines"].append(
        {"line_id": "2", "sku": "SK-BLK-M", "quantity": 1, "unit_price": "19.90", "discount": "2.00"}
    )
    order.update(overrides)
    return order


def _trades(simulators: Simulators) -> dict[str, Any]:
    return simulators.wdt_target.app[wdt_sim.STATE_KEY].trades


async def test_orders_over_several_hours_walk_60_minute_windows(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    end = simulators.anchor
    start = end - timedelta(hours=5)
    expected = {
        t["trade_no"] for t in generate_trades(SEED, end) if start <= parse_time(t["modified"]) <= end
    }
    assert expected, "the seed should have trades in any 5 hours"
    window = {"updated_from": start.isoformat(), "updated_to": end.isoformat(), "limit": 3}
    seen = [item["order_no"] for item in await walk(client, "/v1/orders", window)]
    assert sorted(seen) == sorted(expected)


async def test_a_sparse_range_fills_its_pages_across_backend_windows(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """The backend lists one hour of orders a call; a page is not one hour. Three days walked 72 pages
    of three orders on average; a page now holds at least half its limit, unless the request spent its
    24 backend calls on empty hours first, and no order is missed or listed twice."""
    end = simulators.anchor
    start = end - timedelta(days=3)
    expected = [
        t["trade_no"] for t in generate_trades(SEED, end) if start <= parse_time(t["modified"]) <= end
    ]
    window = {"updated_from": start.isoformat(), "updated_to": end.isoformat(), "limit": 40}
    pages = await walk_pages(client, "/v1/orders", window)
    assert sorted(item["order_no"] for page in pages for item in page) == sorted(expected)
    assert all(len(page) <= 40 for page in pages)
    hours = 3 * 24 + 1
    assert len(pages) <= -(-len(expected) // 20) + -(-hours // 24) + 1, [len(page) for page in pages]


async def test_get_one_order(client: httpx.AsyncClient, simulators: Simulators) -> None:
    trade = generate_trades(SEED, simulators.anchor)[3]
    response = await client.get(f"/v1/orders/{trade['trade_no']}")
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["order_no"] == trade["trade_no"]
    assert order["lines"]
    assert order["status"] != "unknown"


async def test_push_an_order_then_read_it_back(client: httpx.AsyncClient, simulators: Simulators) -> None:
    order = new_order()
    order["lines"][1]["refund_status"] = "requested"
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    assert response.status_code == 201, response.text
    stored = _trades(simulators)[order["platform_order_id"]]
    assert response.json() == {
        "connection": "wdt-target",
        "platform_order_id": order["platform_order_id"],
        "order_no": stored["trade_no"],  # the backend's number, which trade_push itself does not say
        "created": True,
        "updated": False,
    }
    created = await client.get(response.headers["location"], headers=TARGET)
    assert created.status_code == 200 and created.json()["platform_order_ids"] == [order["platform_order_id"]]
    assert stored["paid"].startswith("145.7")  # 2*59.90 + 19.90 - 2.00 + 8.00
    # Pushed again: the backend had it, so nothing is created (200), and only a change updates it.
    again = await client.post("/v1/orders", json=order, headers=TARGET)
    assert (again.status_code, again.json()["created"], again.json()["updated"]) == (200, False, False)
    changed = await client.post("/v1/orders", json={**order, "seller_memo": "gift wrap"}, headers=TARGET)
    assert (changed.status_code, changed.json()["created"], changed.json()["updated"]) == (200, False, True)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    listed = (
        await client.get(
            "/v1/orders",
            params={"updated_from": (now - timedelta(minutes=30)).isoformat(), "limit": 100},
            headers=TARGET,
        )
    ).json()
    [read] = [item for item in listed["items"] if order["platform_order_id"] in item["platform_order_ids"]]
    # Lines read back as pushed: the backend's line id (the pushed line_id, prefixed by the order's id to
    # be unique per seller, as order_push.yaml writes it) and the refund status as POST takes it.
    assert [(line["line_id"], line["quantity"], line["refund_status"]) for line in read["lines"]] == [
        (
            f"{order['platform_order_id']}-{line['line_id']}",
            line["quantity"],
            line.get("refund_status", "none"),
        )
        for line in order["lines"]
    ]


async def test_idempotency_key_replays_the_first_answer_and_pushes_nothing(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    order = new_order()
    headers = {**TARGET, "Idempotency-Key": f"idem-{uuid.uuid4()}"}
    first = await client.post("/v1/orders", json=order, headers=headers)
    assert first.status_code == 201
    stored_before = dict(_trades(simulators)[order["platform_order_id"]])
    count_before = len(_trades(simulators))

    replay = await client.post("/v1/orders", json=order, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(_trades(simulators)) == count_before
    assert _trades(simulators)[order["platform_order_id"]] == stored_before

    changed = await client.post("/v1/orders", json={**order, "shipping_fee": "9.00"}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"


async def test_an_invalid_order_names_the_field_and_pushes_nothing(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    count_before = len(_trades(simulators))
    order = new_order()
    del order["receiver"]["province"]
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    assert response.status_code == 400
    assert response.json()["field"] == "receiver.province"
    bad_quantity = new_order(lines=[{"line_id": "L1", "sku": "X", "quantity": 0, "unit_price": "1.00"}])
    response = await client.post("/v1/orders", json=bad_quantity, headers=TARGET)
    assert response.status_code == 400
    assert response.json()["field"] == "lines[0].quantity"
    bad_money = new_order(shipping_fee="eight")
    response = await client.post("/v1/orders", json=bad_money, headers=TARGET)
    assert response.json()["field"] == "shipping_fee"
    assert len(_trades(simulators)) == count_before


async def test_a_vendor_rejection_names_the_order_field_with_the_vendor_answer(
    client: httpx.AsyncClient,
) -> None:
    """The simulator only knows real Chinese provinces, as the ERP's address base does: its refusal names
    `receiver_province`, which the caller knows as `receiver.province`."""
    order = new_order()
    order["receiver"]["province"] = "Atlantis"
    response = await client.post("/v1/orders", json=order, headers=TARGET)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_parameter"
    assert body["field"] == "receiver.province"
    assert body["vendor"]["system"] == "wangdiantong"
    assert body["vendor"]["code"] == "2840" and "Atlantis" in body["vendor"]["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"shop_code": "no-such-shop"}, "shop_code"),  # vendor 1007
        ({"warehouse_code": "NO-SUCH-WH"}, "warehouse_code"),  # vendor 2840, warehouse_no
        ({"lines": [NEW_ORDER["lines"][0], NEW_ORDER["lines"][0]]}, "lines[1].line_id"),  # a repeated oid
        ({"platform_order_id": "中" * 40}, "lines[0].line_id"),  # tid-line_id: over the oid's 40
        ({"ordered_at": "yesterday"}, "ordered_at"),  # was a 500 from the mapping
        ({"paid_at": "2026-13-45T99:00:00+08:00"}, "paid_at"),
        ({"status": "unknown"}, "status"),  # was a 500: no vendor status for it
    ],
)
async def test_an_order_the_backend_cannot_take_names_the_field(
    client: httpx.AsyncClient, simulators: Simulators, change: dict[str, Any], field: str
) -> None:
    count_before = len(_trades(simulators))
    response = await client.post("/v1/orders", json=new_order(**change), headers=TARGET)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (response.json()["code"], response.json()["field"]) == ("invalid_parameter", field)
    assert len(_trades(simulators)) == count_before


async def test_orders_that_change_while_a_caller_walks_the_pages_skip_no_other_order(
    client: httpx.AsyncClient,
) -> None:
    """The vendor pages by offset: an order that changes leaves its place and moves every later one up.
    Each order listed is changed (pushed again) before the next page is asked for; none may be missed."""
    start = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(seconds=1)
    orders = [new_order() for _ in range(5)]
    for order in orders:
        assert (await client.post("/v1/orders", json=order, headers=TARGET)).status_code == 201
    by_id = {order["platform_order_id"]: order for order in orders}
    end = datetime.now(ZoneInfo("Asia/Shanghai"))
    await asyncio.sleep(1.1)  # the vendor keeps whole seconds: a change now is modified after `end`
    listed: set[str] = set()
    params: dict[str, Any] = {"updated_from": start.isoformat(), "updated_to": end.isoformat(), "limit": 1}
    while True:
        page = (await client.get("/v1/orders", params=params, headers=TARGET)).json()
        for item in page["items"]:
            for tid in set(item["platform_order_ids"]) & by_id.keys():
                listed.add(tid)
                changed = {**by_id[tid], "seller_memo": f"changed after page {len(listed)}"}
                assert (await client.post("/v1/orders", json=changed, headers=TARGET)).status_code == 200
        if not page["next_cursor"]:
            break
        params = {"cursor": page["next_cursor"]}
    assert listed == set(by_id)
