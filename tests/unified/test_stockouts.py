"""GET /v1/stockouts over the Wangdiantong simulator, through a real gateway process."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from gateway.connectors.simdata import generate_stockouts, parse_time
from tests.conftest import SEED, Simulators
from tests.unified.walk import walk

RFC3339_CN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
MONEY = re.compile(r"^-?\d+\.\d{2}$")


def _seeded(simulators: Simulators) -> list[dict]:
    return generate_stockouts(SEED, simulators.anchor)


async def test_list_returns_normalized_stockouts(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/stockouts", params={"limit": 5})
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["items"]) == 5
    assert page["next_cursor"]
    for item in page["items"]:
        assert item["connection"] == "wdt-demo"
        assert item["remote_id"] and item["stockout_no"]
        assert item["status"] in {"approved", "shipped", "completed", "cancelled", "exception"}
        assert item["remote_status"] in {"5", "55", "95", "105", "110", "113"}
        assert MONEY.match(item["paid"]) and MONEY.match(item["goods_amount"])
        assert RFC3339_CN.match(item["updated_at"])
        assert item["lines"] and all(isinstance(line["quantity"], int) for line in item["lines"])
        assert item["remote_data"] is None


async def test_include_remote_data_adds_the_vendor_record(client: httpx.AsyncClient) -> None:
    page = (await client.get("/v1/stockouts", params={"limit": 2, "include": "remote_data"})).json()
    for item in page["items"]:
        assert item["remote_data"]["stockout_no"] == item["stockout_no"]
        assert "details_list" in item["remote_data"]


async def test_walking_every_cursor_of_30_days_yields_each_stockout_once(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    end = simulators.anchor
    start = end - timedelta(days=30)
    expected = {s["stockout_no"] for s in _seeded(simulators) if start <= parse_time(s["modified"]) <= end}
    assert len(expected) >= 2000
    window = {"updated_from": start.isoformat(), "updated_to": end.isoformat(), "limit": 100}
    seen = Counter(item["stockout_no"] for item in await walk(client, "/v1/stockouts", window))
    assert set(seen) == expected
    assert max(seen.values()) == 1


async def test_a_range_longer_than_the_vendor_window_is_split(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """45 days spans two 30-day vendor windows; the simulator rejects anything longer."""
    end = simulators.anchor
    start = end - timedelta(days=45)
    expected = {s["stockout_no"] for s in _seeded(simulators) if start <= parse_time(s["modified"]) <= end}
    window = {"updated_from": start.isoformat(), "updated_to": end.isoformat(), "limit": 100}
    seen = [item["stockout_no"] for item in await walk(client, "/v1/stockouts", window)]
    assert sorted(seen) == sorted(expected)


async def test_filters_reach_the_vendor(client: httpx.AsyncClient, simulators: Simulators) -> None:
    seeded = _seeded(simulators)
    shop = seeded[0]["shop_no"]
    page = (await client.get("/v1/stockouts", params={"shop": shop, "limit": 50})).json()
    assert page["items"] and {item["shop_code"] for item in page["items"]} == {shop}
    page = (await client.get("/v1/stockouts", params={"status": "cancelled", "limit": 50})).json()
    assert page["items"] and {item["status"] for item in page["items"]} == {"cancelled"}


async def test_get_one_stockout_and_404_for_unknown(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    seeded = _seeded(simulators)[7]
    response = await client.get(f"/v1/stockouts/{seeded['stockout_no']}")
    assert response.status_code == 200
    body = response.json()
    assert body["stockout_no"] == seeded["stockout_no"]
    assert body["tracking_no"] == (seeded["logistics_no"] or None)
    missing = await client.get("/v1/stockouts/CK-NOPE-0000")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found"


@pytest.mark.parametrize("vendor_status", ["5", "55", "95", "110"])
async def test_a_stockout_is_found_by_number_whatever_its_status(
    client: httpx.AsyncClient, simulators: Simulators, vendor_status: str
) -> None:
    """Asked without a status the vendor finds only shipped and finished stockouts; a cancelled or approved
    one that the list shows must be found by its number too."""
    seeded = next(s for s in _seeded(simulators) if s["status"] == vendor_status)
    response = await client.get(f"/v1/stockouts/{seeded['stockout_no']}")
    assert response.status_code == 200, response.text
    assert (response.json()["stockout_no"], response.json()["remote_status"]) == (
        seeded["stockout_no"],
        vendor_status,
    )
