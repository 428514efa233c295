"""Express tracking takes its parameters as the lists do: one it does not take, or one given twice, is a
400 naming it, not ignored (`limit=5`) or silently resolved to one of the values (`tracking_no` twice)."""

from __future__ import annotations

import httpx

from tests.conftest import Simulators
from tests.unified.test_tracking import _shipped


async def test_tracking_refuses_a_parameter_it_does_not_take(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    stockout = _shipped(simulators, "顺丰速运")
    params = {
        "carrier": "shunfeng",
        "tracking_no": stockout["logistics_no"],
        "phone": stockout["receiver_mobile"],
    }
    assert (await client.get("/v1/logistics/tracking", params=params)).status_code == 200
    refused = await client.get("/v1/logistics/tracking", params={**params, "limit": "5"})
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert (problem["code"], problem["field"]) == ("invalid_parameter", "limit")
    assert "carrier, tracking_no, phone" in problem["detail"]


async def test_tracking_refuses_a_parameter_given_twice(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    stockout = _shipped(simulators, "顺丰速运")
    twice = [
        ("carrier", "shunfeng"),
        ("tracking_no", "SF0000000000"),
        ("tracking_no", stockout["logistics_no"]),
        ("phone", stockout["receiver_mobile"]),
    ]
    refused = await client.get("/v1/logistics/tracking", params=twice)
    assert refused.status_code == 400, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("invalid_parameter", "tracking_no")
    assert "more than once" in refused.json()["detail"]
