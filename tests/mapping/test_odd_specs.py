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
