"""Tracking through kuaidi100: by carrier and number, and for a seeded stockout."""

from __future__ import annotations

import httpx

from gateway.connectors.simdata import generate_stockouts
from tests.conftest import SEED, Simulators

ORDER = ["picked_up", "in_transit", "out_for_delivery", "delivered"]


def _shipped(simulators: Simulators, carrier_name: str | None = None) -> dict:
    for stockout in generate_stockouts(SEED, simulators.anchor):
        shipped = stockout["logistics_no"] and stockout["status"] in {"95", "110"}
        if shipped and carrier_name in (None, stockout["logistics_name"]):
            return stockout
    raise AssertionError("no shipped stockout in the seed")


async def test_tracking_for_a_seeded_stockout(client: httpx.AsyncClient, simulators: Simulators) -> None:
    stockout = _shipped(simulators)
    response = await client.get(f"/v1/stockouts/{stockout['stockout_no']}/tracking")
    assert response.status_code == 200, response.text
    tracking = response.json()
    assert tracking["tracking_no"] == stockout["logistics_no"]
    assert tracking["connection"] == "kd100-demo"
    assert tracking["status"] != "unknown"
    assert tracking["events"], "a shipped parcel has at least its pick-up event"
    times = [event["time"] for event in tracking["events"]]
    assert times == sorted(times, reverse=True), "newest first"
    assert tracking["delivered"] == (tracking["status"] == "delivered")


async def test_tracking_by_carrier_and_number_needs_the_phone_for_sf(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    stockout = _shipped(simulators, "顺丰速运")
    params = {"carrier": "shunfeng", "tracking_no": stockout["logistics_no"]}
    without = await client.get("/v1/logistics/tracking", params=params)
    assert without.status_code == 400, without.text
    assert (without.json()["code"], without.json()["field"]) == ("invalid_parameter", "phone")
    assert without.json()["vendor"]["code"] == "408"
    wrong = await client.get("/v1/logistics/tracking", params={**params, "phone": "0000"})
    assert (wrong.status_code, wrong.json()["field"]) == (400, "phone")
    with_phone = await client.get(
        "/v1/logistics/tracking", params={**params, "phone": stockout["receiver_mobile"]}
    )
    assert with_phone.status_code == 200, with_phone.text
    assert with_phone.json()["tracking_no"] == stockout["logistics_no"]


async def test_an_unknown_parcel_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/logistics/tracking", params={"carrier": "yuantong", "tracking_no": "YT0000000001"}
    )
    assert response.status_code == 404
    assert response.json()["vendor"]["code"] == "500"


async def test_a_stockout_not_yet_shipped_has_no_tracking(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    approved = next(s for s in generate_stockouts(SEED, simulators.anchor) if s["status"] == "55")
    response = await client.get(f"/v1/stockouts/{approved['stockout_no']}/tracking")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_carrier_kuaidi100_does_not_know_is_named(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/logistics/tracking", params={"carrier": "no-such-carrier", "tracking_no": "YT0000000001"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid_parameter", "carrier")
    assert body["vendor"] == {"system": "kuaidi100", "code": "400", "message": body["vendor"]["message"]}
