"""The kuaidi100 simulator over real HTTP: signing, phone checks, errors, tracking that fits the seed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from gateway.connectors import simdata
from gateway.connectors.kuaidi100.sign import sign
from gateway.connectors.kuaidi100.simulator import (
    DEFAULT_CREDENTIALS,
    FINAL_STATES,
    RETURN_BAD_REQUEST,
    RETURN_NO_RESULT,
    RETURN_PHONE_CHECK_FAILED,
    RETURN_SIGN_FAILED,
    Kd100SimulatorConfig,
    create_app,
)
from gateway.connectors.simdata import CHINA_TZ
from gateway.connectors.simulators import serve_simulators
from gateway.connectors.wangdiantong import sign as wdt_sign
from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.services import free_port, wait_for_port

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)
CONFIG = Kd100SimulatorConfig(anchor=ANCHOR)


class Kd100:
    """A client of one running simulator, signing the way kuaidi100's SDKs do."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def query(
        self, param: dict[str, Any], *, key: str = CONFIG.key, customer: str = CONFIG.customer
    ) -> dict[str, Any]:
        text = msgspec.json.encode(param).decode()
        form = {"customer": customer, "sign": sign(text, key, customer), "param": text}
        async with self.session.post(self.server.make_url("/poll/query.do"), data=form) as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
            return body

    async def track(self, stockout: dict[str, Any], **extra: Any) -> dict[str, Any]:
        com = simdata.CARRIER_BY_LOGISTICS_CODE[stockout["logistics_code"]].kuaidi100_com
        param = {
            "com": com,
            "num": stockout["logistics_no"],
            "phone": stockout["receiver_mobile"][-4:],
            **extra,
        }
        return await self.query(param)


async def _serve(config: Kd100SimulatorConfig) -> AsyncIterator[Kd100]:
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Kd100(server, session)
    finally:
        await session.close()
        await server.close()


@pytest.fixture(scope="module")
async def kd100() -> AsyncIterator[Kd100]:
    async for client in _serve(CONFIG):
        yield client


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, Any]]:
    stockouts = simdata.generate_stockouts(CONFIG.seed, ANCHOR, CONFIG.stockout_count)
    return [s for s in stockouts if s["logistics_no"]]


def carrier_of(stockout: dict[str, Any]) -> simdata.Carrier:
    return simdata.CARRIER_BY_LOGISTICS_CODE[stockout["logistics_code"]]


def first_by(shipped: list[dict[str, Any]], com: str) -> dict[str, Any]:
    return next(s for s in shipped if carrier_of(s).kuaidi100_com == com)


async def test_every_seeded_waybill_is_tracked_consistently_with_its_consign_time(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    gate = asyncio.Semaphore(32)

    async def track(stockout: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            return await kd100.track(stockout)

    bodies = await asyncio.gather(*(track(s) for s in shipped))
    states: set[str] = set()
    for stockout, body in zip(shipped, bodies, strict=True):
        assert body["message"] == "ok", (stockout["logistics_no"], body)
        assert (body["nu"], body["com"], body["status"]) == (
            stockout["logistics_no"],
            carrier_of(stockout).kuaidi100_com,
            "200",
        )
        times = [simdata.parse_time(event["time"]) for event in body["data"]]
        consigned = simdata.parse_time(stockout["consign_time"])
        assert times == sorted(times, reverse=True), "newest first"
        assert consigned <= times[-1] and times[0] <= ANCHOR
        assert "揽收" in body["data"][-1]["context"]
        assert (body["ischeck"] == "1") == (body["state"] == "3")
        if ANCHOR - consigned > timedelta(days=7):
            assert body["state"] in FINAL_STATES, stockout["logistics_no"]
        if ANCHOR - consigned < timedelta(hours=3):
            assert body["state"] in {"0", "1"}, "a parcel shipped within 3 hours is still near the warehouse"
        states.add(body["state"])
    assert len(shipped) >= 2000
    assert {"0", "1", "3", "5"} <= states and states & {"2", "14", "6"}


async def test_a_shipment_with_an_exception_in_the_erp_is_a_problem_shipment(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    exceptional = [s for s in shipped if s["status"] == "113"][:5]
    assert exceptional
    for stockout in exceptional:
        body = await kd100.track(stockout)
        assert body["state"] in {"0", "1", "2"}
        if ANCHOR - simdata.parse_time(stockout["consign_time"]) > timedelta(days=7):
            assert body["state"] == "2"


async def test_the_same_query_gets_the_same_answer_from_a_fresh_server(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    first = await kd100.track(shipped[100], resultv2="4")
    async for other in _serve(CONFIG):
        assert await other.track(shipped[100], resultv2="4") == first
    assert await kd100.track(shipped[100], resultv2="4") == first


async def test_resultv2_adds_the_area_and_status_of_each_event(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    plain = await kd100.track(shipped[0])
    assert set(plain["data"][0]) == {"time", "ftime", "context"}
    detailed = await kd100.track(shipped[0], resultv2="4")
    newest = detailed["data"][0]
    assert {"areaCode", "areaName", "status", "statusCode"} <= set(newest)
    assert newest["areaCode"].startswith("CN")
    assert {"from", "cur", "to"} == set(detailed["routeInfo"])
    assert shipped[0]["receiver_city"] in detailed["routeInfo"]["to"]["name"]


async def test_order_asc_gives_the_oldest_event_first(kd100: Kd100, shipped: list[dict[str, Any]]) -> None:
    newest_first = await kd100.track(shipped[5])
    oldest_first = await kd100.track(shipped[5], order="asc")
    assert oldest_first["data"] == list(reversed(newest_first["data"]))


async def test_a_wrong_sign_is_503(kd100: Kd100, shipped: list[dict[str, Any]]) -> None:
    param = {"com": "yuantong", "num": shipped[0]["logistics_no"]}
    body = await kd100.query(param, key="not-the-key")
    assert body == {"result": False, "returnCode": RETURN_SIGN_FAILED, "message": "验证签名失败"}


async def test_an_unknown_customer_is_503(kd100: Kd100) -> None:
    body = await kd100.query({"com": "yuantong", "num": "YT1"}, customer="SOMEONE", key=CONFIG.key)
    assert body["returnCode"] == RETURN_SIGN_FAILED


async def test_shunfeng_without_the_receivers_phone_is_408(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    stockout = first_by(shipped, "shunfeng")
    no_phone = await kd100.query({"com": "shunfeng", "num": stockout["logistics_no"]})
    wrong_phone = await kd100.query({"com": "shunfeng", "num": stockout["logistics_no"], "phone": "0000"})
    full_number = await kd100.query(
        {"com": "shunfeng", "num": stockout["logistics_no"], "phone": stockout["receiver_mobile"]}
    )
    assert no_phone["returnCode"] == wrong_phone["returnCode"] == RETURN_PHONE_CHECK_FAILED
    assert no_phone["result"] is False
    assert full_number["message"] == "ok"


async def test_zhongtong_needs_the_phone_and_yuantong_does_not(
    kd100: Kd100, shipped: list[dict[str, Any]]
) -> None:
    zto, yto = first_by(shipped, "zhongtong"), first_by(shipped, "yuantong")
    assert (await kd100.query({"com": "zhongtong", "num": zto["logistics_no"]}))["returnCode"] == "408"
    assert (await kd100.query({"com": "yuantong", "num": yto["logistics_no"]}))["message"] == "ok"


@pytest.mark.parametrize(
    "param",
    [
        {"com": "nosuchcarrier", "num": "YT1"},
        {"com": "yuantong"},
        {"num": "YT1"},
        {"com": "yuantong", "num": "Y" * 33},
    ],
)
async def test_a_bad_carrier_or_number_is_400(kd100: Kd100, param: dict[str, Any]) -> None:
    body = await kd100.query(param)
    assert (body["result"], body["returnCode"]) == (False, RETURN_BAD_REQUEST)


async def test_an_unknown_number_is_500(kd100: Kd100, shipped: list[dict[str, Any]]) -> None:
    unknown = await kd100.query({"com": "yuantong", "num": "YT0000000000000"})
    yto = first_by(shipped, "yuantong")
    wrong_company = await kd100.query({"com": "yunda", "num": yto["logistics_no"]})
    for body in (unknown, wrong_company):
        assert body == {
            "result": False,
            "returnCode": RETURN_NO_RESULT,
            "message": "查询无结果，请隔段时间再查",
        }


def test_the_demo_configuration_uses_the_demo_credentials() -> None:
    config = Kd100SimulatorConfig()
    assert (config.customer, config.key) == (DEFAULT_CREDENTIALS["customer"], DEFAULT_CREDENTIALS["key"])
    assert config.seed == simdata.DEFAULT_SEED


async def test_the_demo_servers_track_the_waybills_their_erp_shipped() -> None:
    """`unigate simulators`: kuaidi100 knows every waybill the seeded ERP reports, on real ports."""
    ports = [free_port() for _ in range(3)]
    serving = asyncio.create_task(serve_simulators("127.0.0.1", *ports, anchor=ANCHOR))
    try:
        for port in ports:
            await asyncio.to_thread(wait_for_port, "127.0.0.1", port)
        creds = wdt_sim.DEFAULT_CREDENTIALS
        form = {
            "sid": creds["sid"],
            "appkey": creds["appkey"],
            "timestamp": str(int(time.time())),
            "start_time": simdata.format_time(ANCHOR - timedelta(days=2)),
            "end_time": simdata.format_time(ANCHOR),
            "page_size": "20",
        }
        form["sign"] = wdt_sign.sign(form, creds["appsecret"])
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{ports[0]}/openapi2/stockout_order_query_trade.php"
            async with session.post(url, data=form) as resp:
                stockouts = (await resp.json())["stockout_list"]
            assert len(stockouts) == 20
            for stockout in stockouts:
                com = carrier_of(stockout).kuaidi100_com
                param = msgspec.json.encode(
                    {"com": com, "num": stockout["logistics_no"], "phone": stockout["receiver_mobile"]}
                ).decode()
                key, customer = DEFAULT_CREDENTIALS["key"], DEFAULT_CREDENTIALS["customer"]
                form = {"customer": customer, "sign": sign(param, key, customer), "param": param}
                async with session.post(f"http://127.0.0.1:{ports[2]}/poll/query.do", data=form) as resp:
                    body = await resp.json()
                assert body["message"] == "ok" and body["nu"] == stockout["logistics_no"]
                oldest = simdata.parse_time(body["data"][-1]["time"])
                assert oldest >= simdata.parse_time(stockout["consign_time"])
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
