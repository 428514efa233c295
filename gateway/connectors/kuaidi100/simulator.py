"""A kuaidi100 real-time query server (`/poll/query.do`) that tracks the waybills of the Wangdiantong seed.

Inferred, not documented (protocols.md §3 and §6): the 400 messages for a bad `com` or `num`, the `condition`
value ("00"), the contexts' wording, `statusCode` only with resultv2=4, and `routeInfo`/`isLoop` on every
success. Tracking is a pure function of (seed, waybill, consign_time); the events up to the anchor are shown.
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypedDict

import msgspec
from aiohttp import web

from gateway.connectors import simdata
from gateway.connectors.kuaidi100.sign import sign
from gateway.connectors.simdata import CHINA_TZ, DEFAULT_SEED, DEFAULT_STOCKOUT_COUNT, Carrier, City

__all__ = [
    "DEFAULT_CREDENTIALS",
    "DEFAULT_SEED",
    "FINAL_STATES",
    "RETURN_BAD_REQUEST",
    "RETURN_NO_RESULT",
    "RETURN_PHONE_CHECK_FAILED",
    "RETURN_SIGN_FAILED",
    "STATE_KEY",
    "Event",
    "Kd100Credentials",
    "Kd100SimulatorConfig",
    "Kd100State",
    "Shipment",
    "create_app",
    "shipments_of",
    "track",
]

RETURN_BAD_REQUEST: Final = "400"
RETURN_PHONE_CHECK_FAILED: Final = "408"
RETURN_NO_RESULT: Final = "500"
RETURN_SIGN_FAILED: Final = "503"

STATE_IN_TRANSIT: Final = "0"
STATE_PICKED_UP: Final = "1"
STATE_PROBLEM: Final = "2"
STATE_SIGNED: Final = "3"
STATE_OUT_FOR_DELIVERY: Final = "5"
STATE_RETURNING: Final = "6"
STATE_REFUSED: Final = "14"
# A shipment in one of these states gets no further events.
FINAL_STATES: Final = frozenset({STATE_SIGNED, STATE_PROBLEM, STATE_REFUSED, STATE_RETURNING})

MAX_NUM_LENGTH: Final = 32


class Kd100Credentials(TypedDict):
    customer: str
    key: str


# The demo account; `Kd100SimulatorConfig(**DEFAULT_CREDENTIALS, ...)` and connections use it.
DEFAULT_CREDENTIALS: Final[Kd100Credentials] = {"customer": "DEMOCUSTOMER", "key": "demo-key"}

_INCOMPLETE: Final = "提交的数据不完整，或者贵公司没授权"
# Where parcels change trucks between regions.
_NATIONAL_HUBS: Final = ("410100", "420100", "430100", "320100")


class Kd100SimulatorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One kuaidi100 account; seed, anchor and stockout_count must match the Wangdiantong simulator's."""

    customer: str = DEFAULT_CREDENTIALS["customer"]
    key: str = DEFAULT_CREDENTIALS["key"]
    seed: int = DEFAULT_SEED
    anchor: datetime | None = None  # the seed's "now"; None = the current hour
    stockout_count: int = DEFAULT_STOCKOUT_COUNT
    # False: events up to the anchor are shown, so answers never change (tests). True: events up to the
    # real clock, so the parcels of a long-running demo keep moving.
    follow_clock: bool = False


@dataclass(frozen=True, slots=True)
class Shipment:
    """A waybill of the seed and what tracking needs to know about it."""

    number: str
    carrier: Carrier
    consign_time: datetime
    origin: simdata.Warehouse
    city: City
    district: str
    district_code: str
    mobile: str
    exceptional: bool  # wdt stockout status 113: shipped with an exception


@dataclass(frozen=True, slots=True)
class Event:
    time: datetime
    context: str
    state: str
    status: str  # kuaidi100's word for the state: 揽收, 在途, 派件, 签收, 疑难, 拒签, 退回
    status_code: str  # the advanced status (resultv2=4)
    city: City
    district: str = ""
    district_code: str = ""


@dataclass
class Kd100State:
    config: Kd100SimulatorConfig
    anchor: datetime
    shipments: dict[str, Shipment]

    @classmethod
    def build(cls, config: Kd100SimulatorConfig) -> Kd100State:
        anchor = simdata.resolve_anchor(config.anchor)
        stockouts = simdata.generate_stockouts(config.seed, anchor, config.stockout_count)
        return cls(config, anchor, shipments_of(stockouts))

    def cutoff(self) -> datetime:
        return max(self.anchor, datetime.now(CHINA_TZ)) if self.config.follow_clock else self.anchor


STATE_KEY: Final = web.AppKey("kd100_state", Kd100State)


def create_app(config: Kd100SimulatorConfig) -> web.Application:
    """The simulator as an aiohttp application; serve it with aiohttp's runners or TestServer."""
    app = web.Application()
    app[STATE_KEY] = Kd100State.build(config)
    app.router.add_post("/poll/query.do", _query)
    return app


def shipments_of(stockouts: list[dict[str, Any]]) -> dict[str, Shipment]:
    """Every shipped stockout's waybill, as kuaidi100 would know it."""
    shipments: dict[str, Shipment] = {}
    for stockout in stockouts:
        if not stockout["logistics_no"]:
            continue
        shipments[stockout["logistics_no"]] = Shipment(
            number=stockout["logistics_no"],
            carrier=simdata.CARRIER_BY_LOGISTICS_CODE[stockout["logistics_code"]],
            consign_time=simdata.parse_time(stockout["consign_time"]),
            origin=simdata.WAREHOUSE_BY_NO[stockout["warehouse_no"]],
            city=simdata.CITY_BY_CODE[stockout["receiver_city_code"]],
            district=stockout["receiver_district"],
            district_code=stockout["receiver_district_code"],
            mobile=stockout["receiver_mobile"],
            exceptional=stockout["status"] == simdata.STOCKOUT_SHIPPED_WITH_EXCEPTION,
        )
    return shipments


class _Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


async def _query(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        body = _answer(state, fields)
    except _Failed as failed:
        body = {"result": False, "returnCode": failed.code, "message": failed.message}
    return web.Response(body=msgspec.json.encode(body), content_type="application/json", charset="utf-8")


def _answer(state: Kd100State, fields: Mapping[str, str]) -> dict[str, Any]:
    param = fields.get("param", "")
    if not param:
        raise _Failed(RETURN_BAD_REQUEST, _INCOMPLETE)
    config = state.config
    if fields.get("customer") != config.customer or not hmac.compare_digest(
        fields.get("sign", ""), sign(param, config.key, config.customer)
    ):
        raise _Failed(RETURN_SIGN_FAILED, "验证签名失败")
    query = _parse_param(param)
    com, num = query["com"], query["num"]
    shipment = state.shipments.get(num)
    if shipment is None or shipment.carrier.kuaidi100_com != com:
        raise _Failed(RETURN_NO_RESULT, "查询无结果，请隔段时间再查")
    if shipment.carrier.phone_required and not _phone_matches(query.get("phone"), shipment.mobile):
        raise _Failed(RETURN_PHONE_CHECK_FAILED, "快递公司参数异常：验证码错误")
    cutoff = state.cutoff()
    events = [event for event in track(shipment, config.seed) if event.time <= cutoff]
    if not events:
        raise _Failed(RETURN_NO_RESULT, "查询无结果，请隔段时间再查")
    return _success(shipment, com, events, str(query.get("resultv2") or "0"), query.get("order") == "asc")


def _parse_param(param: str) -> dict[str, Any]:
    try:
        query = msgspec.json.decode(param)
    except msgspec.DecodeError:
        raise _Failed(RETURN_BAD_REQUEST, _INCOMPLETE) from None
    if not isinstance(query, dict):
        raise _Failed(RETURN_BAD_REQUEST, _INCOMPLETE)
    com, num = query.get("com"), query.get("num")
    if not isinstance(com, str) or not com or not isinstance(num, str) or not num:
        raise _Failed(RETURN_BAD_REQUEST, _INCOMPLETE)
    if com not in simdata.CARRIER_BY_KUAIDI100_COM:
        raise _Failed(RETURN_BAD_REQUEST, "找不到对应公司")
    if len(num) > MAX_NUM_LENGTH:
        raise _Failed(RETURN_BAD_REQUEST, f"快递单号长度不能超过{MAX_NUM_LENGTH}位")
    return query


def _phone_matches(phone: Any, mobile: str) -> bool:
    """kuaidi100 takes the receiver's (or sender's) full number or its last four digits."""
    digits = "".join(ch for ch in str(phone or "") if ch.isdigit())
    return len(digits) >= 4 and digits[-4:] == mobile[-4:]


def _area_code(code: str) -> str:
    return f"CN{code}000000"


def _area_name(event: Event) -> str:
    parts = [event.city.province_short, event.city.name] + ([event.district] if event.district else [])
    return ",".join(parts)


def _success(
    shipment: Shipment, com: str, events: list[Event], resultv2: str, ascending: bool
) -> dict[str, Any]:
    latest = events[-1]
    rows = [_row(event, resultv2) for event in events]
    if not ascending:
        rows.reverse()  # newest first, kuaidi100's default
    origin = shipment.origin.city
    return {
        "message": "ok",
        "nu": shipment.number,
        "ischeck": "1" if latest.state == STATE_SIGNED else "0",
        "com": com,
        "status": "200",
        "condition": "00",
        "state": latest.state,
        "isLoop": False,
        "routeInfo": {
            "from": {"number": _area_code(origin.code), "name": f"{origin.province_short},{origin.name}"},
            "cur": {"number": _area_code(latest.city.code), "name": _area_name(latest)},
            "to": {
                "number": _area_code(shipment.city.code),
                "name": f"{shipment.city.province_short},{shipment.city.name}",
            },
        },
        "data": rows,
    }


def _row(event: Event, resultv2: str) -> dict[str, str]:
    moment = simdata.format_time(event.time)
    row = {"time": moment, "ftime": moment, "context": event.context}
    if resultv2 in ("1", "2", "3", "4"):
        row |= {
            "areaCode": _area_code(event.district_code or event.city.code),
            "areaName": _area_name(event),
            "status": event.status,
            "areaCenter": event.city.center,
            "areaPinYin": event.city.pinyin,
        }
    if resultv2 == "4":
        row |= {"statusCode": event.status_code, "location": _area_name(event).replace(",", "")}
    return row


def track(shipment: Shipment, seed: int) -> list[Event]:
    """Every event of the shipment's life, oldest first; the same inputs always give the same events."""
    rng = random.Random(f"{seed}:{shipment.number}")
    outcome = "problem" if shipment.exceptional else _outcome(rng)
    route = _Route(rng, shipment)
    route.pick_up()
    route.trunk()
    if outcome == "problem":
        route.fail_delivery()
        return route.events
    route.deliver()
    if outcome in ("refused", "returning"):
        route.refuse()
        if outcome == "returning":
            route.send_back()
        return route.events
    route.sign()
    return route.events


def _outcome(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "problem"
    if roll < 0.05:
        return "refused"
    if roll < 0.065:
        return "returning"
    return "signed"


def _hub(city: City) -> str:
    prefix = city.short if city.province_short == city.short else city.province_short + city.short
    return f"{prefix}转运中心"


def _station(city: City, district: str) -> str:
    return f"{city.short}{district.removesuffix('区') if len(district) > 2 else district}营业部"


# What each kind of event means to kuaidi100: (state, status word, advanced statusCode).
_KINDS: Final = {
    "picked_up": (STATE_PICKED_UP, "揽收", "103"),
    "trunk": (STATE_IN_TRANSIT, "在途", "1002"),
    "in_delivery_city": (STATE_IN_TRANSIT, "在途", "1001"),
    "forwarded": (STATE_IN_TRANSIT, "在途", "1003"),
    "out_for_delivery": (STATE_OUT_FOR_DELIVERY, "派件", "5"),
    "at_pickup_station": (STATE_OUT_FOR_DELIVERY, "派件", "501"),
    "signed": (STATE_SIGNED, "签收", "301"),
    "signed_at_station": (STATE_SIGNED, "签收", "304"),
    "not_delivered": (STATE_PROBLEM, "疑难", "206"),
    "refused": (STATE_REFUSED, "拒签", "14"),
    "returning": (STATE_RETURNING, "退回", "6"),
}


class _Route:
    """Builds a shipment's events in time order, from the warehouse to the receiver (or back)."""

    def __init__(self, rng: random.Random, shipment: Shipment) -> None:
        self.rng = rng
        self.shipment = shipment
        self.events: list[Event] = []
        self.clock = shipment.consign_time
        self.station = _station(shipment.city, shipment.district)
        mobile = f"1{rng.choice('358')}{rng.randrange(10**9):09d}"
        self.courier = f"{rng.choice('王李张刘陈杨黄赵吴周')}师傅({mobile})"

    def _wait(self, low_minutes: int, high_minutes: int) -> None:
        self.clock += timedelta(seconds=self.rng.randrange(low_minutes * 60, high_minutes * 60))

    def _add(self, kind: str, city: City, text: str, district: str = "") -> None:
        state, status, code = _KINDS[kind]
        district_code = dict(city.districts).get(district, "") if district else ""
        context = f"[{city.name}]{text}"
        self.events.append(Event(self.clock, context, state, status, code, city, district, district_code))

    def _at_receiver(self, kind: str, text: str) -> None:
        self._add(kind, self.shipment.city, text, self.shipment.district)

    def pick_up(self) -> None:
        origin = self.shipment.origin
        station = _station(origin.city, origin.district)
        collector = f"{self.rng.choice('王李张刘陈')}师傅(13{self.rng.randrange(10**9):09d})"
        self._wait(10, 90)
        self._add("picked_up", origin.city, f"【{station}】的{collector}已揽收", origin.district)
        self._wait(60, 180)
        self._add(
            "trunk", origin.city, f"快件离开【{station}】已发往【{_hub(origin.city)}】", origin.district
        )

    def trunk(self) -> None:
        """Hub to hub, from the warehouse's city to the receiver's, then to the receiver's station."""
        origin, target = self.shipment.origin.city, self.shipment.city
        hubs = [origin]
        if origin.region != target.region and self.rng.random() < 0.6:
            middle = [simdata.CITY_BY_CODE[c] for c in _NATIONAL_HUBS if c not in (origin.code, target.code)]
            hubs.append(self.rng.choice(middle))
        if target is not origin:
            hubs.append(target)
        for n, city in enumerate(hubs):
            self._wait(*(_travel_minutes(hubs[n - 1], city) if n else (60, 150)))
            last = n == len(hubs) - 1
            self._add("in_delivery_city" if last else "trunk", city, f"快件已到达【{_hub(city)}】")
            self._wait(40, 180)
            onward = self.station if last else _hub(hubs[n + 1])
            self._add("forwarded" if last else "trunk", city, f"快件已发往【{onward}】")
        self._wait(120, 300)
        self._at_receiver("in_delivery_city", f"快件已到达【{self.station}】")

    def deliver(self) -> None:
        # couriers go out during the day; what arrives in the evening or at night waits for the morning round
        self._wait(30, 90)
        if not 7 <= self.clock.hour < 17:
            day = self.clock + timedelta(days=1) if self.clock.hour >= 17 else self.clock
            self.clock = day.replace(hour=8, minute=0, second=0) + timedelta(seconds=self.rng.randrange(5400))
        self._at_receiver("out_for_delivery", f"【{self.station}】的派件员{self.courier}正在为您派件")

    def sign(self) -> None:
        if self.rng.random() < 0.2:
            self._wait(30, 180)
            district = self.shipment.district
            self._at_receiver(
                "at_pickup_station", f"您的快件已存放至【{district}菜鸟驿站】,请凭取件码及时取件"
            )
            self._wait(240, 1440)
            self._at_receiver("signed_at_station", f"您的快件已凭取件码签收,如有疑问请联系{self.courier}")
            return
        self._wait(40, 360)
        self._at_receiver("signed", f"您的快件已签收,签收人:本人,如有疑问请联系{self.courier}")

    def fail_delivery(self) -> None:
        self._wait(60, 300)
        self._at_receiver(
            "not_delivered", f"快件派送不成功,原因:收件人电话无人接听,快件暂存【{self.station}】,待再次派送"
        )

    def refuse(self) -> None:
        reason = self.rng.choice(("不想要了", "商品与描述不符", "重复购买"))
        self._wait(60, 240)
        self._at_receiver("refused", f"收件人拒收,原因:{reason},快件将退回寄件人")

    def send_back(self) -> None:
        self._wait(120, 480)
        self._add("returning", self.shipment.city, f"快件已退回,正在返回【{self.shipment.origin.name}】途中")


def _travel_minutes(start: City, end: City) -> tuple[int, int]:
    if start.province_code == end.province_code:
        return 120, 300
    if start.region == end.region:
        return 360, 840
    return 840, 1800
