"""Odd records through a compiled mapping: each maps to the right value or fails that record with a
MappingError naming its key and field, quickly, never a crash or a silently wrong value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.mapping import Mapping, MappingError, compile_mapping


def mapping(fields: dict[str, Any]) -> Mapping:
    return compile_mapping({"name": "odd", "key": "no", "fields": fields})


def failure(m: Mapping, record: dict[str, Any]) -> MappingError:
    with pytest.raises(MappingError) as caught:
        m({"no": "SO-1", **record})
    return caught.value


NUMBERS = {
    "count": {"from": "v", "type": "int"},
    "amount": {"from": "v", "type": "decimal"},
    "formula": {"expr": "v * 2", "type": "decimal"},
    "text": {"expr": "v * 2", "type": "string"},
}


@pytest.mark.parametrize("field", list(NUMBERS))
@pytest.mark.parametrize("value", ["1e999999", "1E+99999999", "1e-999999"])
def test_a_number_of_a_million_digits_fails_its_record_at_once(field: str, value: str) -> None:
    # "1e999999" as an int took the gateway ~30 s of CPU (and a preview then answered 500); as
    # a decimal without a scale it became a text of a million digits.
    error = failure(mapping({field: NUMBERS[field]}), {"v": value})
    assert (error.key, error.field) == ("SO-1", field)
    reasons = ("digits written out", "not a whole number", "result is not a usable number")
    assert any(reason in error.message for reason in reasons), error.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("²", "'²' is not a number"), ("9" * 5000, "has more than 100 digits written out")],
)
def test_an_odd_whole_number_is_named_plainly(value: str, expected: str) -> None:
    error = failure(mapping({"count": {"from": "v", "type": "int"}}), {"v": value})
    assert expected in error.message and "ValueError" not in error.message


def test_numbers_within_a_hundred_digits_still_map_exactly() -> None:
    m = mapping(NUMBERS)
    out = m({"v": "1e98"})
    assert out["count"] == 10**98
    assert out["amount"] == "1" + "0" * 98
    assert m({"v": "１２"})["count"] == 12  # full-width digits, as Chinese input methods type them


def test_a_formula_decimal_shows_as_digits_in_errors() -> None:
    error = failure(mapping({"qty": {"expr": "v / 3", "type": "int"}}), {"v": "1"})
    assert error.message.startswith("0.3333") and "Decimal(" not in error.message
    assert Decimal(error.message.split()[0]) > 0


EPOCHS = mapping(
    {
        "ms": {"from": "ms", "type": "datetime", "format": "epoch_ms", "output": "epoch_ms"},
        "seconds": {"from": "at", "type": "datetime", "output": "epoch"},
        "at_ms": {"from": "at", "type": "datetime", "output": "epoch_ms"},
    }
)


@pytest.mark.parametrize("ms", [2180274463706, 2194283896621, 1700000000123, 0, -1, -1500])
def test_a_time_in_milliseconds_comes_back_to_the_millisecond(ms: int) -> None:
    # Through a float, about one time in 170 came back a millisecond early.
    assert EPOCHS({"ms": ms})["ms"] == ms
    assert EPOCHS({"ms": str(ms)})["ms"] == ms


def test_unix_time_before_1970_rounds_down_like_unix_time() -> None:
    out = EPOCHS({"at": "1969-12-31T23:59:59.500+00:00"})
    assert (out["seconds"], out["at_ms"]) == (-1, -500)
    assert EPOCHS({"at": "2026-03-01T10:00:00.123+08:00"})["at_ms"] == 1772330400123


@pytest.mark.parametrize("value", ["1e400", 253402300800000, "-1e15"])
def test_a_time_past_the_year_9999_fails_its_record(value: Any) -> None:
    error = failure(EPOCHS, {"ms": value})
    assert (error.key, error.field) == ("SO-1", "ms")
    assert "is not a time in milliseconds since 1970" in error.message


@pytest.mark.parametrize(
    "value", ["-0", "-0.00", "-0.001", "-0.004", -0.0, Decimal("-0"), Decimal("-0.0000001")]
)
def test_an_amount_that_is_zero_has_no_sign(value: Any) -> None:
    m = mapping(
        {
            "text": {"from": "v", "type": "decimal", "scale": 2},
            "number": {"from": "v", "type": "decimal", "scale": 2, "output": "number"},
            "formula": {"expr": "v * 1", "type": "decimal", "scale": 2},
            "rounded": {"expr": "round(v, 2)"},
            "fn": {"from": "v", "fn": [{"round": 2}]},
            "lines": {
                "each": "lines",
                "fields": {"share": {"expr": "$parent.v - 0", "type": "decimal", "scale": 2}},
            },
            "total": {"expr": "sum($target.lines, share)", "type": "decimal", "scale": 2},
        }
    )
    out = m({"v": value, "lines": [{}]})
    assert (out["text"], out["formula"], out["lines"], out["total"]) == (
        "0.00",
        "0.00",
        [{"share": "0.00"}],
        "0.00",
    )
    for exact in (out["number"], out["rounded"], out["fn"]):
        assert exact == 0 and not exact.is_signed(), exact
    assert mapping({"v": {"from": "v", "type": "decimal"}})({"v": "-0"})["v"] == "0"
