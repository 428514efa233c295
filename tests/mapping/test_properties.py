"""Properties: no source record crashes a compiled mapping, and coercions survive a round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mapping import Mapping, MappingError, compile_mapping
from tests.mapping.seed_stockouts import REFERENCE

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["", "0", "95", "1.5", "-3", "0000-00-00 00:00:00", "2026-03-01 10:00:00", "1e400", "中通快递"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
LINE_KEYS = [
    "rec_id",
    "src_oid",
    "goods_count",
    "sell_price",
    "share_amount",
    "discount",
    "goods_id",
    "spec_no",
    "goods_no",
]
HEADER_KEYS = [
    "stockout_no",
    "status",
    "src_tids",
    "src_order_no",
    "cod_amount",
    "post_amount",
    "trade_time",
    "pay_time",
]
lines = st.fixed_dictionaries({}, optional=dict.fromkeys(LINE_KEYS, values))
records = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            **dict.fromkeys(HEADER_KEYS, values),
            "details_list": st.one_of(values, st.lists(st.one_of(lines, values), max_size=4)),
            "kuaidi100Data": values,
        },
    ),
)

FEATURES = compile_mapping(
    {
        "name": "every_feature",
        "key": "stockout_no",
        "tables": {"carriers": {"中通快递": "zhongtong"}},
        "fields": {
            "text": {"from": "status", "type": "string", "max_length": 5},
            "whole": {"from": "status", "type": "int"},
            "money": {"from": "post_amount", "type": "decimal", "scale": 2},
            "flag": {"from": "cod_amount", "type": "bool"},
            "when": {
                "from": "trade_time",
                "type": "datetime",
                "format": "yyyy-MM-dd HH:mm:ss",
                "tz": "Asia/Shanghai",
            },
            "iso": {"from": "pay_time", "type": "datetime", "output": "yyyy-MM-dd HH:mm:ss"},
            "mapped": {"from": "status", "map": {"95": "shipped"}, "on_unknown": "error"},
            "looked": {"from": "kuaidi100Data.com", "lookup": "carriers", "on_unknown": "keep"},
            "tids": {
                "from": "src_tids",
                "split": ",",
                "fn": ["first", "trim", "upper", {"substr": [0, 3]}, "mask", "hash"],
            },
            "skus": {"from": "details_list[*].spec_no", "join": ","},
            "name": {"template": "{stockout_no}/{details_list[0].rec_id}"},
            "both": {"concat": ["status", "src_order_no"], "sep": "-"},
            "paid": {
                "expr": "sum(details_list, sell_price * goods_count - discount) + post_amount",
                "type": "decimal",
            },
            "cond": {"from": "status", "when": "cod_amount > 0 and status in ('95', '110') or not src_tids"},
            "fallback": {"expr": "src_tids or src_order_no or 'none'"},
            "lines": {
                "each": "details_list",
                "filter": "goods_count != '0'",
                "fields": {
                    "oid": {"expr": "src_oid or $parent.stockout_no + '-' + rec_id"},
                    "qty": {"from": "goods_count", "type": "decimal", "scale": 4},
                    "id": {"expr": "goods_id if goods_id not in ('', '0') else goods_no", "type": "string"},
                },
            },
            "track": {
                "from": "kuaidi100Data",
                "fields": {"com": "com", "state": {"from": "state", "type": "int"}},
            },
        },
    }
)


def maps_or_reports(mapping: Mapping, record: Any) -> None:
    try:
        out = mapping(record)
    except MappingError as error:
        assert error.message and isinstance(error.message, str)
        return
    assert isinstance(out, dict) and list(out) == [field.name for field in mapping.spec.fields]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(records)
def test_random_records_map_or_yield_a_mapping_error(record: Any) -> None:
    maps_or_reports(FEATURES, record)
    maps_or_reports(REFERENCE_MAPPING, record)


REFERENCE_MAPPING = compile_mapping(REFERENCE)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=8))
def test_bulk_runs_never_stop_at_a_bad_record(batch: list[Any]) -> None:
    result = FEATURES.many(batch)
    assert len(result.records) + len(result.errors) == len(batch)
    indexes = [e.index for e in result.errors if e.index is not None]
    assert len(indexes) == len(result.errors) and indexes == sorted(set(indexes))


@given(
    st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=8),
)
def test_decimal_text_round_trips_at_its_scale(number: Decimal, scale: int) -> None:
    exact = number.quantize(Decimal(1).scaleb(-scale))
    text = format(exact if exact else exact.copy_abs(), "f")  # zero is written without a sign
    as_text = compile_mapping(
        {"name": "t", "fields": {"v": {"from": "v", "type": "decimal", "scale": scale}}}
    )
    as_number = compile_mapping(
        {"name": "t", "fields": {"v": {"from": "v", "type": "decimal", "scale": scale, "output": "number"}}}
    )
    parsed = as_number({"v": text})["v"]
    assert isinstance(parsed, Decimal) and parsed == Decimal(text)
    assert as_text({"v": parsed})["v"] == text
    assert as_text({"v": text})["v"] == text


VENDOR = {"type": "datetime", "format": "yyyy-MM-dd HH:mm:ss", "tz": "Asia/Shanghai"}
TO_RFC3339 = compile_mapping({"name": "t", "fields": {"v": {"from": "v", **VENDOR, "output": "rfc3339"}}})
TO_VENDOR = compile_mapping(
    {
        "name": "t",
        "fields": {
            "v": {"from": "v", "type": "datetime", "tz": "Asia/Shanghai", "output": "yyyy-MM-dd HH:mm:ss"}
        },
    }
)


# China has kept UTC+8 without daylight saving since 1992; earlier local times can be ambiguous.
@given(st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2200, 1, 1)))
def test_vendor_datetime_round_trips_through_rfc3339(moment: datetime) -> None:
    vendor = moment.strftime("%Y-%m-%d %H:%M:%S")
    rfc3339 = TO_RFC3339({"v": vendor})["v"]
    assert datetime.fromisoformat(rfc3339).utcoffset() == timedelta(hours=8)
    assert TO_VENDOR({"v": rfc3339})["v"] == vendor


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_rfc3339_from_any_zone_lands_in_the_vendor_zone(moment: datetime) -> None:
    vendor = TO_VENDOR({"v": moment.isoformat()})["v"]
    back = TO_RFC3339({"v": vendor})["v"]
    assert datetime.fromisoformat(back) == moment.replace(microsecond=0)
