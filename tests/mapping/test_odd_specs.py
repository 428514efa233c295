"""Specs an admin gets wrong, or right in an unusual way: each is compiled, or refused with every problem
named at its place in the spec, never a traceback."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mapping import Mapping, MappingSpecError, compile_mapping


def mapping(fields: dict[str, Any], **top: Any) -> Mapping:
    return compile_mapping({"name": "odd", **top, "fields": fields})


def problems(source: Any) -> list[str]:
    with pytest.raises(MappingSpecError) as caught:
        compile_mapping(source)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"channel": {"const": "erp"}}, {"channel": "erp"}),
        ({"note": {"default": "none"}}, {"note": "none"}),
        ({"channel": {"const": "erp"}, "copy": "$target.channel"}, {"channel": "erp", "copy": "erp"}),
        (
            {"lines": {"each": "items", "fields": {"kind": {"const": "goods"}}}},
            {"lines": [{"kind": "goods"}]},
        ),
    ],
    ids=["constant", "default", "target", "list-item"],
)
def test_a_spec_or_list_item_that_reads_nothing_of_its_record_compiles(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert mapping(fields)({"items": [{"x": 1}]}) == expected


def test_a_clock_only_spec_compiles() -> None:
    assert mapping({"at": {"fn": ["now"], "type": "datetime"}})({})["at"].startswith("20")


# -- YAML as an admin writes it --------------------------------------------------------------------


def test_yaml_words_numbers_and_dates_mean_what_the_author_wrote() -> None:
    m = compile_mapping(
        """
name: yaml_words
fields:
  flag: {from: f, map: {yes: Y, no: N, on: ON, off: OFF}}
  country: {from: c, map: {NO: norway, CN: china}}
  on: a
  no: b
  code: {const: 0123}
  time: {const: 12:30}
  label: {from: v, type: string, default: 1.10}
  fee: {from: v, type: decimal, scale: 3, default: 1.10}
  version: {const: 1.10}
  day: {const: 2026-03-01}
  paid_at: {from: p, type: datetime, format: "yyyy-MM-dd HH:mm:ss", output: "yyyy-MM-dd HH:mm:ss",
            default: 0000-00-00 00:00:00}
  status: {from: s, map: {5: cancelled, 1.10: old}}
  must: {from: a, required: yes}
"""
    )
    assert m({"f": "no", "c": "NO", "a": 1, "b": 2, "s": "1.10"}) == {
        "flag": "N",
        "country": "norway",
        "on": 1,
        "no": 2,
        "code": "0123",
        "time": "12:30",
        "label": "1.10",
        "fee": "1.100",
        "version": 1.1,  # without a type a number stays a JSON number
        "day": "2026-03-01",
        "paid_at": "0000-00-00 00:00:00",
        "status": "old",
        "must": 1,
    }
    assert m({"f": "on", "s": 5, "a": "x"})["flag"] == "ON"
    assert m({"f": "on", "s": 5, "a": "x"})["status"] == "cancelled"


def test_a_key_written_twice_is_refused_with_its_line() -> None:
    assert problems("name: twice\nfields:\n  tid: src_tid\n  tid: src_tids\n") == [
        "the spec is not valid YAML: line 4, column 3: 'tid' is written twice in the same block; "
        "the second would silently replace the first"
    ]
    assert "'tid' is written twice" in problems('{"name": "twice", "fields": {"tid": "a", "tid": "b"}}')[0]


def test_yaml_merge_keys_may_be_overridden() -> None:
    m = compile_mapping(
        "name: merged\nfields:\n  price: &money {from: price, type: decimal, scale: 2}\n"
        "  fee: {<<: *money, from: fee, scale: 3}\n"
    )
    assert m({"price": "2", "fee": "1.5"}) == {"price": "2.00", "fee": "1.500"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "name: x\nfields:\n\ttid: a\n",
            "line 3, column 1: found character '\\t' that cannot start any token",
        ),
        ("name: x\nfields: &a {b: *a}\n", "line 2"),
        ("name: x\nfields: {[a]: b}\n", "a key must be a name or a value"),
        ("name: x\nfields: {a: !!python/object:os.system x}\n", "could not determine a constructor"),
        ("name: x\nfields: " + "[" * 3000 + "]" * 3000, "nests lists or settings too deeply"),
        (b"name: x\nfields: {a: \xff}", "not UTF-8"),
    ],
    ids=["tab", "recursive-alias", "list-key", "python-tag", "deep", "not-utf8"],
)
def test_unreadable_yaml_is_one_plain_problem(text: str, problem: str) -> None:
    (found,) = problems(text)
    assert problem in found


# -- big and deep specs ----------------------------------------------------------------------------


def test_a_sum_over_lists_inside_list_items_compiles() -> None:
    m = mapping(
        {
            "total": {"expr": "sum(orders, sum(lines, price * num) + $parent.fee)", "type": "decimal"},
            "per_order": {"expr": "sum($target.orders, sum(lines, qty))", "type": "decimal", "scale": 2},
            "orders": {
                "each": "orders",
                "fields": {"lines": {"each": "lines", "fields": {"qty": {"from": "num", "type": "decimal"}}}},
            },
        }
    )
    record = {
        "fee": "1",
        "orders": [
            {"lines": [{"price": "2", "num": "3"}, {"price": "1.5", "num": "2"}]},
            {"lines": [{"price": "10", "num": "1"}]},
        ],
    }
    out = m(record)
    assert (out["total"], out["per_order"]) == ("21.0", "6.00")


def _nested(depth: int, kind: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"v": "x"}
    for level in range(depth):
        if kind == "each":
            fields = {f"l{level}": {"each": "items", "fields": fields}}
        else:
            fields = {f"o{level}": {"fields": fields}}
    return fields


@pytest.mark.parametrize("kind", ["each", "object"])
def test_lists_and_objects_nest_eight_deep_and_no_deeper(kind: str) -> None:
    record: dict[str, Any] = {"x": 1}
    for _ in range(8):
        record = {"items": [record], "x": 1}
    out: Any = mapping(_nested(8, kind))(record)
    for _ in range(8):
        out = next(iter(out.values()))
        out = out[0] if kind == "each" else out
    assert out == {"v": 1}
    (problem,) = problems({"name": "deep", "fields": _nested(30, kind)})
    step = "each.fields" if kind == "each" else "fields"
    assert problem.startswith(f"fields.{'l' if kind == 'each' else 'o'}29.{step}.")
    assert "nested more than 8 levels deep here" in problem


@pytest.mark.parametrize(
    "formula",
    [
        "+".join(["a"] * 1000),
        "+".join(["a"] * 10000),
        "-" * 300 + "a",
        "not " * 1000 + "a",
        "sum(l, " * 100 + "x" + ")" * 100,
        " and ".join(["a"] * 300),
        "round(" * 200 + "a" + ", 2)" * 200,
    ],
    ids=["1000-terms", "10000-terms", "signs", "nots", "sums", "ands", "rounds"],
)
def test_a_huge_formula_is_refused_at_its_field(formula: str) -> None:
    (problem,) = problems({"name": "huge", "fields": {"total": {"expr": formula}}})
    assert problem.startswith("fields.total: formula '")
    assert "is too long or nests too deeply" in problem
    assert len(problem) < 500, "the formula itself is cut short in the message"


def test_a_very_long_path_is_refused_at_its_field() -> None:
    (problem,) = problems({"name": "long", "fields": {"v": ".".join(["a"] * 3000)}})
    assert problem.startswith("fields.v: its 'from' path: path 'a.a.a")
    assert "has 3000 parts; at most 32 are allowed" in problem


# -- messages an admin reads -------------------------------------------------------------------------


def test_a_missing_field_in_a_condition_reads_as_a_sentence() -> None:
    assert problems(
        {"name": "c", "source": {"fields": ["a"]}, "fields": {"b": {"from": "a", "when": "zz == '1'"}}}
    ) == [
        "fields.b: the condition uses 'zz', which is not a field of the source; "
        "check the spelling against the declared source fields"
    ]


def test_target_of_a_field_inside_the_same_list_says_why_it_cannot_be_read() -> None:
    (problem,) = problems(
        {"name": "t", "fields": {"lines": {"each": "l", "fields": {"q": "q", "q2": {"expr": "$target.q"}}}}}
    )
    assert problem == (
        "fields.lines.each.fields.q2: the formula uses '$target.q': 'q' is a field inside a list or object, "
        "and $target. reads only the top-level fields; read the same source again instead"
    )


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("yyyy-mm-dd", "'mm' is the minutes; write MM for the month"),
        ("YYYY-MM-DD", "'Y' is not a date-time pattern letter (did you mean yyyy, the year?)"),
        (
            "yyyy-MM-dd hh:mm",
            "'h' is not a date-time pattern letter (did you mean HH, the hour from 00 to 23?)",
        ),
    ],
)
def test_a_date_pattern_written_in_the_wrong_case_is_refused_with_a_hint(pattern: str, hint: str) -> None:
    (problem,) = problems(
        {"name": "d", "fields": {"at": {"from": "at", "type": "datetime", "format": pattern}}}
    )
    assert problem.startswith(f"fields.at: 'format' {pattern!r}: {hint}")


def test_date_time_constants_defaults_and_map_values_are_checked_at_load() -> None:
    vendor = {"type": "datetime", "format": "yyyy-MM-dd HH:mm:ss", "tz": "Asia/Shanghai"}
    found = problems(
        {
            "name": "d",
            "fields": {
                "a": {"from": "a", **vendor, "output": "yyyy-MM-dd HH:mm:ss", "default": "not a date"},
                "b": {"const": "garbage", **vendor},
                "c": {"from": "c", "map": {"x": "soon"}, **vendor},
            },
        }
    )
    assert [problem.split(":")[0] for problem in found] == ["fields.a", "fields.b", "fields.c"]
    assert "its default is used as written, so it must be in the output form yyyy-MM-dd HH:mm:ss" in found[0]
    assert "its const does not fit type: datetime: 'garbage' is not a date-time" in found[1]
    assert "map value for 'x' does not fit type: datetime" in found[2]
    m = mapping(
        {
            "at": {"const": "2026-03-01 10:00:00", **vendor},
            "pay": {"from": "p", **vendor, "output": "yyyy-MM-dd HH:mm:ss", "default": "0000-00-00 00:00:00"},
        }
    )
    assert m({}) == {"at": "2026-03-01T10:00:00+08:00", "pay": "0000-00-00 00:00:00"}


def test_max_length_holds_for_constants_defaults_and_map_values() -> None:
    # A constant was never checked (it skips the per-record steps), so 'abcdef' went out at max_length 2.
    found = problems(
        {
            "name": "m",
            "fields": {
                "a": {"const": "abcdef", "max_length": 2},
                "b": {"from": "b", "default": "abcdef", "max_length": 2},
                "c": {"from": "c", "map": {"x": "abcdef"}, "max_length": 2},
            },
        }
    )
    assert found == [
        "fields.a: its const 'abcdef' is longer than max_length: 2",
        "fields.b: its default 'abcdef' is longer than max_length: 2",
        "fields.c: its map value for 'x' 'abcdef' is longer than max_length: 2",
    ]
