"""Properties: no source record crashes a compiled mapping, and coercions survive a round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.mapping import Mapping, MappingError, compile_mapping
from tests.mapping.seed_stockouts import REFERENCE

# What vendors and hand-typed data really send: signs and zeros, numbers of absurd size, words a
# float parser takes, digits that are not ASCII, and date-times at the calendar's edges.
NASTY: list[Any] = [
    "-0", "-0.00", "-0.001", "+5", " 12.5 ", "12.", ".5", "1_000", "0x10", "1E+2", "NaN", "nan",
    "Infinity", "-Infinity", "sNaN", "1e999999", "-1e999999", "1e-999999", "9" * 120, "²", "１２", "١٢",
    "\u00a012", "1700000000000", "1970-01-01 00:00:00", "1969-12-31 23:59:59", "2024-02-29 12:00:00",
    "2023-02-29 12:00:00", "2016-12-31 23:59:60", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
    "2024-03-10 02:30:00", "2024-11-03 01:30:00", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00+14:00",
    "2026-3-1 1:2:3", "\x00", "\ud800", "是", "否", "x" * 300, -0.0, float("nan"), float("inf"),
    Decimal("-0"), Decimal("1E+999999"), 10**40, -(2**63), True, [], {},
]  # fmt: skip
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
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**63), max_value=2**63),
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

FEATURES_SPEC: dict[str, Any] = {
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
        "summer": {
            "from": "trade_time",
            "type": "datetime",
            "format": "yyyy-MM-dd HH:mm:ss",
            "tz": "America/New_York",
            "output": "epoch_ms",
        },
        "epoch": {"from": "cod_amount", "type": "datetime", "format": "epoch", "output": "rfc3339"},
        "epoch_ms": {"from": "post_amount", "type": "datetime", "format": "epoch_ms", "output": "epoch"},
        "count": {"from": "post_amount", "type": "int", "output": "string"},
        "plain": {"from": "cod_amount", "type": "decimal"},
        "said": {"expr": "cod_amount * 2", "type": "string"},
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
FEATURES = compile_mapping(FEATURES_SPEC)
# Each field alone, so a value reaches every field (in FEATURES the first failing field stops the record).
EACH_FEATURE = [
    compile_mapping({**FEATURES_SPEC, "fields": {name: field}})
    for name, field in FEATURES_SPEC["fields"].items()
]


def maps_or_reports(mapping: Mapping, record: Any) -> None:
    try:
        out = mapping(record)
    except MappingError as error:
        assert error.message and isinstance(error.message, str)
        assert error.field is not None or not isinstance(record, dict), "a field's failure names it"
        return
    assert isinstance(out, dict) and list(out) == [field.name for field in mapping.spec.fields]
    for field in mapping.spec.fields:
        value = out[field.name]
        # Never a silently odd value: no text of absurd length, no amount that is a signed zero.
        assert not isinstance(value, str) or len(value) <= 2_000, value  # (the longest input is 300)
        if field.type == "decimal" and value is not None:
            assert Decimal(value) or not Decimal(value).is_signed(), value


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(records)
def test_random_records_map_or_yield_a_mapping_error(record: Any) -> None:
    maps_or_reports(FEATURES, record)
    maps_or_reports(REFERENCE_MAPPING, record)


REFERENCE_MAPPING = compile_mapping(REFERENCE)


@pytest.mark.parametrize("value", NASTY, ids=repr)
def test_every_nasty_value_in_every_field_maps_or_yields_a_mapping_error(value: Any) -> None:
    # Random records reach a given value in a given field rarely; these reach every field with each.
    line = dict.fromkeys(LINE_KEYS, value)
    record = {
        **dict.fromkeys(HEADER_KEYS, value),
        "details_list": [line, line],
        "kuaidi100Data": {"com": value},
    }
    for mapping in (*EACH_FEATURE, FEATURES, REFERENCE_MAPPING):
        maps_or_reports(mapping, record)


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


@settings(max_examples=300)
@given(st.integers(min_value=-(10**13), max_value=253402300799999))
@example(2180274463706)  # a float's rounding gave back ...705
def test_a_time_in_milliseconds_round_trips_exactly(ms: int) -> None:
    assert EPOCH_MS({"v": ms})["v"] == ms
    assert EPOCH_MS({"v": str(ms)})["v"] == ms


EPOCH_MS = compile_mapping(
    {
        "name": "t",
        "fields": {"v": {"from": "v", "type": "datetime", "format": "epoch_ms", "output": "epoch_ms"}},
    }
)


@given(st.decimals(allow_nan=False, allow_infinity=False), st.integers(min_value=0, max_value=6))
def test_a_decimal_at_its_scale_is_never_a_signed_zero(number: Decimal, scale: int) -> None:
    m = compile_mapping({"name": "t", "fields": {"v": {"from": "v", "type": "decimal", "scale": scale}}})
    try:
        out = m({"v": str(number)})["v"]
    except MappingError as error:
        assert "decimal places" in error.message  # too many digits for the scale
        return
    with localcontext() as exact:
        exact.prec = 200
        assert Decimal(out) == number.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP)
    assert not out.startswith("-") or Decimal(out) < 0
