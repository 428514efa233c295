"""The compiled code's shortcuts give what the general code gives: each spec here is mapped beside a twin
that cannot take the shortcut, over random records, and both must agree, output or error."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.mapping import Mapping, MappingError, compile_mapping
from gateway.mapping.coerce import RFC3339, make_datetime, make_decimal, make_int
from gateway.mapping.errors import ValueProblem
from gateway.mapping.runtime import split

SPECIAL = st.sampled_from(
    ["", " ", "0", "-0", "0.0000", "1.5", "1.50", "-2.25", " 7 ", "0000-00-00 00:00:00", "0000-00-00"]
)
AMOUNTS = st.one_of(
    SPECIAL,
    SPECIAL,
    st.decimals(min_value=-(10**6), max_value=10**6, places=4).map(str),
    st.sampled_from([None, "abc", "NaN", [], ["1"], {}, Decimal("2.5"), Decimal("-0"), 3, True]),
)
LINE = st.fixed_dictionaries(
    {},
    optional={
        "price": AMOUNTS,
        "num": AMOUNTS,
        "cut": AMOUNTS,
        "share": AMOUNTS,
        "kind": st.sampled_from(["0", "1"]),
    },
)
RECORD = st.fixed_dictionaries(
    {"zero": st.just("0")},
    optional={
        "a": AMOUNTS,
        "b": AMOUNTS,
        "lines": st.lists(LINE, max_size=4),
        "tids": st.sampled_from(["T1,T2", ",T2", " , ", "", " T3 ,T4", None, ["A"], 5]),
    },
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def outcome(mapping: Mapping, record: Any) -> Any:
    try:
        return mapping(record)
    except MappingError as error:
        return ("error", error.field, error.message)


def twins(shortcut: dict[str, Any], general: dict[str, Any]) -> tuple[Mapping, Mapping]:
    return compile_mapping({"name": "shortcut", **shortcut}), compile_mapping({"name": "general", **general})


def lines_with(when: str | None) -> dict[str, Any]:
    fields = {
        "price": {"from": "price", "type": "decimal", "scale": 2},
        "num": {"from": "num", "type": "decimal", "scale": 0, "output": "number"},
        "adjust": {
            "expr": "max(coalesce(share, price * num) - price * num, 0)",
            "type": "decimal",
            "scale": 4,
        },
        "cut": {"expr": "cut * 1", "type": "decimal", "scale": 4, "when": "kind == '1'"},
        "fee": {"const": 2, "type": "decimal", "scale": 1},
    }
    return {"each": "lines", "filter": "kind != '0'", "fields": fields, **({"when": when} if when else {})}


SUMMED = {
    "fee": {"from": "a", "type": "decimal", "scale": 2},
    "other": {"const": 1.5, "type": "decimal", "scale": 2},
    "total": {
        "expr": "sum($target.lines, price * num + adjust - cut + fee) - -$target.fee - $target.other",
        "type": "decimal",
        "scale": 2,
    },
    # Not rounded: a zero term still counts here, for the places it gives the total ("4.0000", not "4.00").
    "raw": {"expr": "sum($target.lines, price * num + adjust)"},
}
# A sum over a list the mapping builds is added up while the list is built; a `when` on the list
# (always true here) makes the general code read the built items again instead.
FUSED = twins(
    {"fields": {"lines": lines_with(None), **SUMMED}},
    {"fields": {"lines": lines_with("1 == 1"), **SUMMED}},
)
# A product of two item fields in a fused sum reuses a formula's product of their source values when
# both were already written at their scale ("1.50" at 2 places, not "1.5"): the same digits, the same result.
PRODUCT_LINES = {
    "p": {"from": "price", "type": "decimal", "scale": 2},
    "n": {"from": "num", "type": "decimal", "scale": 1, "default": 0},
    "gross": {"expr": "price * num", "type": "decimal", "scale": 3},
}
PRODUCT_TOTALS = {
    "raw": {"expr": "sum($target.lines, p * n)"},
    "total": {"expr": "sum($target.lines, n * p + gross)", "type": "decimal", "scale": 4},
}
PRODUCT = twins(
    {"fields": {"lines": {"each": "lines", "fields": PRODUCT_LINES}, **PRODUCT_TOTALS}},
    {"fields": {"lines": {"each": "lines", "fields": PRODUCT_LINES, "when": "1 == 1"}, **PRODUCT_TOTALS}},
)
# Two-value max/min become one comparison; with three values the builtins run.
PICKED = twins(
    {
        "fields": {
            "hi": {"expr": "max(a, b)"},
            "lo": {"expr": "min(a - 1, b * 2)", "type": "decimal", "scale": 3},
        }
    },
    {
        "fields": {
            "hi": {"expr": "max(a, b, b)"},
            "lo": {"expr": "min(a - 1, b * 2, b * 2)", "type": "decimal", "scale": 3},
        }
    },
)
# coalesce(...) in arithmetic picks and converts inline; as a plain value it goes through the type.
COALESCED = twins(
    {"fields": {"v": {"expr": "coalesce(a, b) * 1", "type": "decimal", "scale": 4}}},
    {"fields": {"v": {"expr": "coalesce(a, b)", "type": "decimal", "scale": 4, "default": 0}}},
)
# A comparison with a number converts the one value inline; two values take the general comparison.
# (`a + b` first: its conversions fill the memo the comparison reads, where blank text counts as 0.)
COMPARED = twins(
    {
        "fields": {
            "ab": {"expr": "a + b"},
            "pos": {"expr": "'y' if a > 0 else 'n'"},
            "neg": {"from": "b", "when": "0 >= a"},
        }
    },
    {
        "fields": {
            "ab": {"expr": "a + b"},
            "pos": {"expr": "'y' if a > zero else 'n'"},
            "neg": {"from": "b", "when": "zero >= a"},
        }
    },
)
# split + first takes the text up to the separator when that part is not empty.
FIRST = compile_mapping(
    {"name": "first", "fields": {"tid": {"from": "tids", "split": ",", "fn": ["first", "upper"]}}}
)


@pytest.mark.parametrize(
    "pair",
    [FUSED, PRODUCT, PICKED, COALESCED, COMPARED],
    ids=["sum", "product", "max-min", "coalesce", "compare"],
)
@SETTINGS
@given(record=RECORD)
@example(record={"zero": "0", "a": "0000-00-00 00:00:00", "b": "1"})
@example(record={"zero": "0", "a": "", "b": "2"})
@example(record={"zero": "0", "a": "1.5", "b": "1.50"})
@example(
    record={
        "zero": "0",
        "a": "1",
        "lines": [{"kind": "1", "price": "2", "num": "3", "cut": "1"}, {"price": "1"}],
    }
)
@example(record={"zero": "0", "lines": [{"price": "1.50", "num": "2.0"}, {"price": "1.5", "num": "2"}]})
def test_shortcuts_agree_with_the_general_code(pair: tuple[Mapping, Mapping], record: Any) -> None:
    shortcut, general = pair
    # repr, so that equal decimals written differently (1.5, 1.50) count as different
    assert repr(outcome(shortcut, record)) == repr(outcome(general, record))


@SETTINGS
@given(st.lists(st.text(alphabet="AB \t", max_size=4), min_size=1, max_size=4))
def test_first_of_a_split_is_its_first_non_empty_part(parts: list[str]) -> None:
    present = [part.strip().upper() for part in parts if part.strip()]
    assert FIRST({"tids": ",".join(parts)})["tid"] == (present[0] if present else None)


@SETTINGS
@given(record=RECORD)
def test_a_missing_key_reads_like_a_null_one(record: Any) -> None:
    # Fields are read by subscript first (all of a block's at once), and with .get when a key is
    # missing: both read the same, for the record and for each list item.
    full = {key: record.get(key) for key in ("a", "b", "zero", "lines", "tids")}
    if record.get("lines"):
        keys = ("price", "num", "cut", "share", "kind")
        full["lines"] = [{key: line.get(key) for key in keys} for line in record["lines"]]
    for mapping in (*FUSED, *PICKED, *COMPARED):
        assert outcome(mapping, record) == outcome(mapping, full)


def test_a_zero_amount_is_written_at_its_scale_without_a_sign() -> None:
    m = compile_mapping({"name": "z", "fields": {"v": {"expr": "a * 1", "type": "decimal", "scale": 4}}})
    assert [m({"a": a})["v"] for a in ("0", "0E-8", "0.00", "-0", "", "1.23456", "-0.00001")] == [
        "0.0000",
        "0.0000",
        "0.0000",
        "0.0000",
        "0.0000",
        "1.2346",
        "0.0000",
    ]


def test_outputs_share_no_state_through_the_template() -> None:
    m = compile_mapping(
        {
            "name": "t",
            "fields": {
                "a": "a",
                "c": {"const": "fixed"},
                "l": {"const": [1]},
                "rows": {"each": "rows", "fields": {"x": "x", "k": {"const": "K"}}},
            },
        }
    )
    first = m({"a": 1, "rows": [{"x": 1}]})
    first["c"], first["a"] = "changed", "changed"
    first["l"].append(2)
    first["rows"][0]["k"] = "changed"
    assert m({"a": 2, "rows": [{"x": 2}]}) == {"a": 2, "c": "fixed", "l": [1], "rows": [{"x": 2, "k": "K"}]}


PATTERNS = ["yyyyMMddHHmmss", "yyyy/MM/dd HH:mm:ss", "dd.MM.yyyy HH:mm", "yyyyMMdd"]


@SETTINGS
@given(
    st.sampled_from(PATTERNS), st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1))
)
def test_fixed_width_patterns_read_as_strptime_reads_them(pattern: str, moment: datetime) -> None:
    strf = pattern.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d")
    strf = strf.replace("HH", "%H").replace("mm", "%M").replace("ss", "%S")
    text = moment.strftime(strf)
    m = compile_mapping(
        {"name": "d", "fields": {"v": {"from": "v", "type": "datetime", "format": pattern, "tz": "UTC"}}}
    )
    assert m({"v": text})["v"] == datetime.strptime(text, strf).replace(tzinfo=None).isoformat() + "+00:00"


@pytest.mark.parametrize(
    "text", ["2026-3-1 10:00:00", "2026/03/01 1:02:03", "2026/02/30 10:00:00", "2026/03/01"]
)
def test_other_shapes_of_a_fixed_width_pattern_take_strptime_and_its_errors(text: str) -> None:
    m = compile_mapping(
        {"name": "d", "fields": {"v": {"from": "v", "type": "datetime", "format": "yyyy/MM/dd HH:mm:ss"}}}
    )
    try:
        expected: Any = datetime.strptime(text, "%Y/%m/%d %H:%M:%S").isoformat() + "+00:00"
    except ValueError:
        expected = MappingError
    if expected is MappingError:
        with pytest.raises(MappingError, match="not a date-time in the form yyyy/MM/dd HH:mm:ss"):
            m({"v": text})
    else:
        assert m({"v": text})["v"] == expected


# Vendor time to RFC 3339 in the same zone writes the text's own digits with the zone's offset; the
# general path attaches the zone and formats. Zones with summer time (gaps and repeated hours) and
# with old local-mean-time offsets in seconds are where the two could part.
ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe"]
VENDOR_PATTERNS = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss"]
DIGITS = st.sampled_from("0123456789")
# Texts of the shape and next to it: valid moments, then one character swapped for something else
# (another digit, a space, a letter, a fullwidth or Arabic-Indic digit, the other separator).
MOMENTS = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
ODD = st.sampled_from(["", " ", "x", "T", "-", ":", "０", "٣", "9", "\t", ".5", "+08"])


@st.composite
def vendor_texts(draw: st.DrawFn) -> Any:
    separator = draw(st.sampled_from([" ", "T"]))
    text = draw(MOMENTS).isoformat(separator)[:19]  # isoformat pads the year to 4 digits; %Y does not
    kind = draw(st.integers(0, 5))
    if kind == 1:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.one_of(ODD, DIGITS)) + text[at + 1 :]
    elif kind == 2:
        text = draw(st.sampled_from([" ", ""])) + text + draw(st.sampled_from([" ", "", ".000", "Z"]))
    elif kind == 3:
        return draw(
            st.sampled_from(
                [None, "", "0000-00-00 00:00:00", "0000-00-00T00:00:00", 5, datetime(2026, 3, 1, 8), ["x"]]
            )
        )
    return text


def converted(convert: Any, value: Any) -> Any:
    try:
        return convert(value)
    except ValueProblem as problem:
        return ("error", str(problem))


@SETTINGS
@given(st.sampled_from(ZONES), st.sampled_from(VENDOR_PATTERNS), vendor_texts())
@example("America/New_York", "yyyy-MM-dd HH:mm:ss", "2026-03-08 02:30:00")  # in the spring-forward gap
@example("America/New_York", "yyyy-MM-dd HH:mm:ss", "2026-11-01 01:30:00")  # in the repeated hour
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "1900-01-01 00:00:00")  # local mean time, +08:05:43
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "1988-06-01 12:00:00")  # China's summer time
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "2026-02-30 10:00:00")
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "2026-03-01 24:00:00")
def test_vendor_time_to_rfc3339_agrees_with_the_general_path(zone: str, pattern: str, value: Any) -> None:
    fast = make_datetime(pattern, zone, RFC3339, zone)
    general = make_datetime(pattern, zone, RFC3339, zone, shortcuts=False)
    assert fast is not general
    assert converted(fast, value) == converted(general, value)


@SETTINGS
@given(st.sampled_from(ZONES), st.sampled_from(VENDOR_PATTERNS), vendor_texts())
# fromisoformat takes this as midnight at offset -00:00: the shape check must send it the general way.
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "2000-01-01 00-00:00")
@example("Asia/Shanghai", "yyyy-MM-dd'T'HH:mm:ss", "2000-01-01T00+00:00")
def test_vendor_time_handed_back_agrees_with_the_general_path(zone: str, pattern: str, value: Any) -> None:
    # The same vendor pattern in and out, in the same zone: a valid text is checked and handed back.
    fast = make_datetime(pattern, zone, pattern, zone)
    general = make_datetime(pattern, zone, pattern, zone, shortcuts=False)
    assert converted(fast, value) == converted(general, value)


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("yyyy-MM-dd HH:mm:ss", "2000-01-01 00-00:00"),
        ("yyyy-MM-dd'T'HH:mm:ss", "2000-01-01T00+00:00"),
        ("yyyy-MM-dd HH:mm:ss", "2026-03-01 10:00:00"),
        ("yyyy-MM-dd", "2026-03-01"),
        ("yyyy-MM-dd HH:mm:ss", "0000-00-00 00:00:00"),
        ("yyyy-MM-dd'T'HH:mm:ss", "0000-00-00T00:00:00"),
        ("yyyy-MM-dd", "0000-00-00"),
    ],
)
def test_compiled_vendor_time_handed_back_agrees_with_the_general_path(pattern: str, value: str) -> None:
    # The compiled code checks the shape inline; it must send what the pattern does not match the general way.
    when = {"type": "datetime", "format": pattern, "tz": "Asia/Shanghai", "output": pattern}
    compiled = compile_mapping({"name": "t", "fields": {"t": {"from": "t", **when}}})
    general = make_datetime(pattern, "Asia/Shanghai", pattern, "Asia/Shanghai", shortcuts=False)

    def through_compiled(text: str) -> Any:
        try:
            return compiled({"t": text})["t"]
        except MappingError as error:
            return ("error", error.message)

    assert through_compiled(value) == converted(general, value)


@SETTINGS
@given(st.text(alphabet="AB ,\t", max_size=6))
def test_a_split_with_one_part_is_split_as_any_other(text: str) -> None:
    # runtime.split answers text without the separator without splitting it: same parts, same order.
    assert split(text, ",") == [part.strip() for part in text.split(",") if part.strip()]


def through_compiled(field: dict[str, Any], value: Any) -> Any:
    """A value mapped by a one-field spec, or the error's message as the general path's is compared."""
    compiled = compile_mapping({"name": "one", "fields": {"v": {"from": "v", **field}}})
    try:
        return compiled({"v": value})["v"]
    except MappingError as error:
        return ("error", error.message)


@SETTINGS
@given(st.sampled_from(ZONES), st.sampled_from(VENDOR_PATTERNS), vendor_texts())
@example("America/New_York", "yyyy-MM-dd HH:mm:ss", "2026-03-08 02:30:00")
@example("America/New_York", "yyyy-MM-dd HH:mm:ss", "2026-11-01 01:30:00")
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "1900-01-01 00:00:00")
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "1988-06-01 12:00:00")
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "2000-01-01 00-00:00")
@example("Asia/Shanghai", "yyyy-MM-dd HH:mm:ss", "0000-00-00 00:00:00")
@example("Asia/Shanghai", "yyyy-MM-dd'T'HH:mm:ss", "0000-00-00T00:00:00")
def test_compiled_vendor_time_to_rfc3339_agrees_with_the_general_path(
    zone: str, pattern: str, value: Any
) -> None:
    # The compiled code writes vendor time as RFC 3339 inline, without calling the coercion.
    field = {"type": "datetime", "format": pattern, "tz": zone, "output": RFC3339}
    general = make_datetime(pattern, zone, RFC3339, zone, shortcuts=False)
    assert through_compiled(field, value) == converted(general, value)


WHOLE = st.one_of(
    st.integers(0, 10**6).map(str),
    st.integers(0, 10**6).map(lambda n: f"{n}.0000"),
    st.builds(
        lambda sign, digits, dot, places, pad: f"{pad}{sign}{digits}{dot}{places}{pad}",
        st.sampled_from(["", "", "-", "+"]),
        st.sampled_from(["0", "4", "007", "12", "", "٣", "１", "²", "9" * 100, "1" * 101, "0" * 101 + "1"]),
        st.sampled_from([".", ".", ""]),
        st.sampled_from(["", "0", "0000", "5", "05", "00 ", "0.0", "0" * 200, "0e1"]),
        st.sampled_from(["", "", " "]),
    ),
    st.sampled_from([None, "", " ", ".", ".0", "1e3", "NaN", 3, True, 2.0, 2.5, Decimal("3.000"), [], {}]),
)


@SETTINGS
@given(st.sampled_from(["number", "string"]), WHOLE)
@example("number", "4.0000")
@example("string", "007.00")
def test_compiled_whole_numbers_agree_with_the_general_path(output: str, value: Any) -> None:
    # The compiled code reads plain digits, with zero places or none, as a whole number inline.
    assert through_compiled({"type": "int", "output": output}, value) == converted(make_int(output), value)


AMOUNT_TEXTS = st.one_of(
    st.builds(
        lambda whole, places: f"{whole}.{places}" if places is not None else whole,
        st.sampled_from(["0", "946", "12", "00", "1" * 26, "1" * 27, "9" * 30]),
        st.one_of(st.none(), st.sampled_from(["", "0", "00", "000", "0000", "5000", "0050", "0001", "995"])),
    ),
    st.decimals(min_value=-(10**4), max_value=10**4, places=6).map(str),
)


@SETTINGS
@given(st.integers(0, 4), AMOUNT_TEXTS)
@example(2, "946.0000")
@example(2, "1" * 27 + ".5")
@example(0, "12.000")
def test_vendor_amounts_at_a_scale_agree_with_the_general_path(scale: int, value: str) -> None:
    # Plain digits are padded or cut at the scale without a Decimal when nothing needs rounding.
    fast = make_decimal(scale, True)
    general = make_decimal(scale, True, from_text=False)
    assert converted(fast, value) == converted(general, value)
    assert through_compiled({"type": "decimal", "scale": scale}, value) == converted(general, value)


def item_fields(general: bool) -> dict[str, Any]:
    """A list item's fields; `parent` reads the record (`$parent.x`) or, in the general twin, first a
    field the items never have, which makes the field one that reads the item."""

    def source(name: str) -> Any:
        return ["never", f"$parent.{name}"] if general else f"$parent.{name}"

    return {
        "x": "x",
        "shop": {"from": source("shop"), "map": {"S1": "one"}, "on_unknown": "keep", "required": True},
        "k": {"const": "K"},
        "no": {"from": source("no")},
    }


# Fields that read only the record are worked out once per list and copied in with the items' template.
SHARED = twins(
    {"fields": {"rows": {"each": "rows", "fields": item_fields(False)}}},
    {"fields": {"rows": {"each": "rows", "fields": item_fields(True)}}},
)
ROWS = st.fixed_dictionaries(
    {},
    optional={
        "shop": st.sampled_from(["S1", "S2", "", None, 5]),
        "no": st.sampled_from(["N1", None, ""]),
        "rows": st.lists(st.fixed_dictionaries({}, optional={"x": st.sampled_from(["1", None])}), max_size=3),
    },
)


@SETTINGS
@given(ROWS)
def test_fields_shared_by_every_item_agree_with_the_general_code(record: Any) -> None:
    shortcut, general = SHARED
    # (The twin's required-field error lists the path it looked at first.)
    expected = repr(outcome(general, record)).replace("never, ", "")
    assert repr(outcome(shortcut, record)) == expected
    mapped = outcome(shortcut, record)
    if isinstance(mapped, dict) and mapped["rows"]:
        # Each item is a dict of its own: changing one changes no other, nor the next record's.
        mapped["rows"][0]["shop"] = "changed"
        assert all(row["shop"] != "changed" for row in mapped["rows"][1:])
        assert repr(outcome(shortcut, record)) == expected


@SETTINGS
@given(
    st.one_of(st.text(alphabet="AB ,\t", max_size=6), st.sampled_from([None, 5, ["A", " "], Decimal("1.5")]))
)
def test_a_compiled_split_agrees_with_the_general_split(value: Any) -> None:
    # Text without the separator is split inline; everything else goes to runtime.split.
    assert through_compiled({"split": ","}, value) == converted(lambda v: split(v, ","), value)
