"""What a compiled mapping produces, feature by feature, as the spec author would see it."""

from __future__ import annotations

import ast
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.mapping import BulkResult, Mapping, MappingError, MappingSpecError, compile_mapping, load_spec


def mapping(fields: dict[str, Any], **top: Any) -> Mapping:
    return compile_mapping({"name": "test", **top, "fields": fields})


def test_string_shorthand_dotted_paths_and_indexes() -> None:
    m = mapping({"a": "x", "b": "obj.inner", "c": "lines[1].sku", "d": "lines[-1].sku", "e": "lines[9].sku"})
    out = m({"x": 1, "obj": {"inner": "i"}, "lines": [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]})
    assert out == {"a": 1, "b": "i", "c": "B", "d": "C", "e": None}


def test_missing_paths_yield_none_and_every_target_key_is_present() -> None:
    m = mapping({"a": "nope", "b": "x.y.z", "c": "x[0]", "d": {"from": "n", "type": "decimal"}})
    assert m({"x": "not an object"}) == {"a": None, "b": None, "c": None, "d": None}


def test_omit_none_leaves_out_empty_targets() -> None:
    m = mapping({"a": "a", "b": "b", "lines": {"each": "l", "fields": {"x": "x", "y": "y"}}}, omit_none=True)
    assert m({"a": 1, "l": [{"x": 2}]}) == {"a": 1, "lines": [{"x": 2}]}


def test_wildcard_paths_collect_lists_and_join_them() -> None:
    m = mapping({"skus": "lines[*].sku", "joined": {"from": "lines[*].sku", "join": ","}})
    out = m({"lines": [{"sku": "A"}, {"sku": None}, {"other": 1}, {"sku": "B"}]})
    assert out == {"skus": ["A", "B"], "joined": "A,B"}


def test_constants_and_defaults_take_the_fields_type() -> None:
    m = mapping(
        {
            "channel": {"const": "erp"},
            "fee": {"const": 0, "type": "decimal", "scale": 2},
            "note": {"from": "remark", "default": ""},
            "qty": {"from": "n", "type": "int", "default": "1"},
            "tags": {"from": "t", "default": []},
        }
    )
    first, second = m({}), m({"n": "3"})
    assert first == {"channel": "erp", "fee": "0.00", "note": "", "qty": 1, "tags": []}
    assert second["qty"] == 3
    first["tags"].append("changed")
    assert m({})["tags"] == [], "a list default must not be shared between records"


def test_empty_text_is_missing_for_typed_fields_but_kept_for_text() -> None:
    m = mapping(
        {
            "text": {"from": "v", "type": "string", "default": "d"},
            "raw": {"from": "v", "default": "d"},
            "number": {"from": "v", "type": "decimal", "default": 0},
        }
    )
    assert m({"v": ""}) == {"text": "", "raw": "", "number": "0"}
    assert m({}) == {"text": "d", "raw": "d", "number": "0"}


def test_required_field_raises_with_record_key_and_field() -> None:
    m = mapping({"shop": {"from": "shop_no", "required": True}}, key="stockout_no")
    with pytest.raises(MappingError) as caught:
        m({"stockout_no": "CK1", "shop_no": ""})
    assert (caught.value.key, caught.value.field) == ("CK1", "shop")
    assert "required" in caught.value.message


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ({"type": "string"}, 95, "95"),
        ({"type": "string"}, Decimal("1.50"), "1.50"),
        ({"type": "string"}, 1.5, "1.5"),
        ({"type": "int"}, "2.0000", 2),
        ({"type": "int"}, " 7 ", 7),
        ({"type": "int", "output": "string"}, 7, "7"),
        ({"type": "decimal", "scale": 2}, "12.5", "12.50"),
        ({"type": "decimal", "scale": 2}, "1.005", "1.01"),
        ({"type": "decimal", "scale": 2}, 3, "3.00"),
        ({"type": "decimal", "scale": 4, "output": "number"}, "1.5", Decimal("1.5000")),
        ({"type": "decimal"}, "1E+2", "100"),
        ({"type": "bool"}, "1", True),
        ({"type": "bool"}, "否", False),
        ({"type": "bool", "output": "int"}, "true", 1),
        ({"type": "bool", "output": "string"}, False, "0"),
    ],
)
def test_type_coercions(setting: dict[str, Any], value: Any, expected: Any) -> None:
    assert mapping({"out": {"from": "v", **setting}})({"v": value})["out"] == expected


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ({"type": "int"}, "2.5"),
        ({"type": "int"}, "two"),
        ({"type": "decimal"}, "NaN"),
        ({"type": "decimal"}, "12,50"),
        ({"type": "decimal"}, {"a": 1}),
        ({"type": "bool"}, "maybe"),
        ({"type": "string"}, [1, 2]),
        ({"type": "datetime", "format": "yyyy-MM-dd HH:mm:ss"}, "2026/03/01"),
    ],
)
def test_bad_values_raise_a_mapping_error_in_plain_words(setting: dict[str, Any], value: Any) -> None:
    m = mapping({"out": {"from": "v", **setting}}, key="id")
    with pytest.raises(MappingError) as caught:
        m({"id": "R1", "v": value})
    assert caught.value.key == "R1" and caught.value.field == "out"
    assert "Error" not in caught.value.message  # plain words, not an exception class name


def test_datetimes_between_vendor_format_and_rfc3339() -> None:
    m = mapping(
        {
            "shipped_at": {
                "from": "consign_time",
                "type": "datetime",
                "format": "yyyy-MM-dd HH:mm:ss",
                "tz": "Asia/Shanghai",
                "output": "rfc3339",
            },
            "created": {
                "from": "created_at",
                "type": "datetime",
                "output": "yyyy-MM-dd HH:mm:ss",
                "tz": "Asia/Shanghai",
            },
            "stamp": {"from": "created_at", "type": "datetime", "output": "epoch"},
            "utc": {
                "from": "created_at",
                "type": "datetime",
                "output": "rfc3339",
                "tz": "Asia/Shanghai",
                "output_tz": "UTC",
            },
            "slash": {
                "from": "other",
                "type": "datetime",
                "format": "yyyy/MM/dd'T'HH:mm",
                "tz": "Asia/Shanghai",
            },
        }
    )
    out = m(
        {
            "consign_time": "2026-03-01 10:00:00",
            "created_at": "2026-03-01T02:00:00Z",
            "other": "2026/03/01T10:00",
        }
    )
    assert out == {
        "shipped_at": "2026-03-01T10:00:00+08:00",
        "created": "2026-03-01 10:00:00",
        "stamp": 1772330400,
        "utc": "2026-03-01T02:00:00+00:00",
        "slash": "2026-03-01T10:00:00+08:00",
    }
    assert m({"consign_time": "0000-00-00 00:00:00", "created_at": ""})["shipped_at"] is None


def test_refused_values_fail_with_their_reason_whatever_on_unknown_says() -> None:
    table = {"95": "50", "110": "70"}
    why = "a cancelled stockout has no trade status that is true for it"
    m = mapping(
        {
            "by_default": {"from": "status", "map": table, "refuse": {5: why}, "default": "0"},
            "kept": {"from": "status", "map": table, "on_unknown": "keep", "refuse": {"5": why}},
            "listed": {"from": "statuses", "split": ",", "map": table, "refuse": {"5": why}},
        }
    )
    assert m({"status": "95", "statuses": "95,110"}) == {
        "by_default": "50",
        "kept": "50",
        "listed": ["50", "70"],
    }
    assert m({"status": "7", "statuses": "7"}) == {"by_default": "0", "kept": "7", "listed": [None]}
    cases = (({"status": 5, "statuses": "95"}, "by_default", "5"), ({"statuses": "110,5"}, "listed", "'5'"))
    for record, field, shown in cases:
        with pytest.raises(MappingError) as caught:
            m(record)
        assert caught.value.field == field
        assert caught.value.message == f"{shown} is refused: {why}"


def test_value_map_default_error_and_keep() -> None:
    table = {"5": "cancelled", "95": "shipped"}
    m = mapping(
        {
            "status": {"from": "status", "map": table, "default": "unknown"},
            "strict": {"from": "status", "map": table, "on_unknown": "error"},
            "kept": {"from": "status", "map": table, "on_unknown": "keep"},
        }
    )
    assert m({"status": 95}) == {"status": "shipped", "strict": "shipped", "kept": "shipped"}
    assert m({}) == {"status": "unknown", "strict": None, "kept": None}
    with pytest.raises(MappingError) as caught:
        m({"status": "7"})
    assert caught.value.field == "strict" and "'7' is not in the value map" in caught.value.message
    assert mapping({"kept": {"from": "status", "map": table, "on_unknown": "keep"}})({"status": "7"}) == {
        "kept": "7"
    }


def test_lookup_tables_from_the_spec_and_from_the_caller() -> None:
    spec = {
        "name": "t",
        "tables": {"carriers": {"中通快递": "zhongtong"}, "shops": {"a": "A"}},
        "fields": {
            "com": {"from": "carrier", "lookup": "carriers"},
            "shop": {"from": "shop", "lookup": "shops"},
        },
    }
    assert compile_mapping(spec)({"carrier": "中通快递", "shop": "a"}) == {"com": "zhongtong", "shop": "A"}
    overridden = compile_mapping(spec, tables={"shops": {"a": "B"}, "unused": {}})
    assert overridden({"carrier": "圆通", "shop": "a"}) == {"com": None, "shop": "B"}


def test_when_condition_gives_none_when_false() -> None:
    m = mapping(
        {
            "thing": {"from": "x", "when": "status == '95'"},
            "cod": {"from": "x", "when": "cod_amount > 0 and not is_gift"},
            "listed": {"from": "x", "when": "status in ('95', '110')"},
        }
    )
    assert m({"x": 1, "status": 95, "cod_amount": "3.5", "is_gift": "0"}) == {
        "thing": 1,
        "cod": 1,
        "listed": 1,
    }
    assert m({"x": 1, "status": "110", "cod_amount": ""}) == {"thing": None, "cod": None, "listed": 1}


def test_templates_and_concatenation() -> None:
    m = mapping(
        {
            "name": {"template": "{receiver_name} ({receiver_mobile})"},
            "braces": {"template": "{{literal}} {a.b}"},
            "address": {"concat": ["province", "city", "district", "address"], "sep": " "},
        }
    )
    out = m(
        {
            "receiver_name": "张三",
            "receiver_mobile": 138,
            "a": {"b": "x"},
            "province": "浙江省",
            "city": "",
            "address": "文三路",
        }
    )
    assert out == {"name": "张三 (138)", "braces": "{literal} x", "address": "浙江省 文三路"}


def test_split_and_join() -> None:
    m = mapping(
        {
            "tids": {"from": "src_tids", "split": ","},
            "first": {"from": "src_tids", "split": ",", "fn": ["first"]},
            "rejoined": {"from": "src_tids", "split": ",", "join": "|"},
            "flat": {"from": "tags", "join": ","},
        }
    )
    out = m({"src_tids": "T1, T2,,", "tags": ["a", 1, None]})
    assert out == {"tids": ["T1", "T2"], "first": "T1", "rejoined": "T1|T2", "flat": "a,1"}


def test_named_functions() -> None:
    m = mapping(
        {
            "code": {"from": "x", "fn": ["trim", "upper"]},
            "low": {"from": "x", "fn": "lower"},
            "cut": {"from": "x", "fn": ["trim", {"substr": [0, 2]}]},
            "rounded": {"from": "n", "fn": [{"round": 1}]},
            "masked": {"from": "mobile", "fn": ["mask"]},
            "short": {"from": "name", "fn": [{"mask": [1, 1]}]},
            "hashed": {"from": "mobile", "fn": ["hash"]},
            "md5": {"from": "mobile", "fn": [{"hash": "md5"}]},
            "swapped": {"from": "x", "fn": [{"replace": ["B", "-"]}]},
            "when": {"fn": ["now"], "type": "datetime", "output": "yyyy-MM-dd HH:mm:ss"},
        }
    )
    out = m({"x": " aBc ", "n": "2.25", "mobile": "13812345678", "name": "张三"})
    assert out["code"] == "ABC" and out["low"] == " abc " and out["cut"] == "aB"
    assert out["rounded"] == Decimal("2.3")
    assert out["masked"] == "138****5678" and out["short"] == "张*"
    assert out["hashed"] == hashlib.sha256(b"13812345678").hexdigest()
    assert out["md5"] == hashlib.md5(b"13812345678").hexdigest()
    assert out["swapped"] == " a-c "
    assert len(out["when"]) == 19


def test_formula_decimal_arithmetic_over_lines() -> None:
    m = mapping(
        {
            "paid": {
                "expr": "sum(order_list, price * num + adjust_amount - discount - share_discount)"
                " + post_amount + other_amount",
                "type": "decimal",
                "scale": 4,
            },
            "count": {"expr": "count(order_list)"},
            "ratio": {"expr": "round(post_amount / 3, 2)"},
        }
    )
    record = {
        "order_list": [
            {"price": "10.10", "num": "3", "discount": "0.3", "share_discount": "1"},
            {"price": 0.1, "num": 3, "adjust_amount": "0.2"},
        ],
        "post_amount": "10",
        "other_amount": None,
    }
    out = m(record)
    # (10.10·3 − 0.3 − 1) + (0.1·3 + 0.2) + 10
    assert out == {"paid": "39.5000", "count": Decimal(2), "ratio": Decimal("3.33")}


def test_formula_names_reach_the_parent_record() -> None:
    m = mapping({"total": {"expr": "sum(lines, qty * $parent.unit)"}})
    assert m({"unit": "2.5", "lines": [{"qty": 2}, {"qty": "4"}]}) == {"total": Decimal("15.0")}


def test_formula_fallback_and_conditional() -> None:
    m = mapping(
        {
            "tid": {"expr": "src_tid or order_no"},
            "term": {"expr": "'2' if cod_amount > 0 else '1'"},
            "label": {"expr": "'SO-' + stockout_no"},
        }
    )
    assert m({"src_tid": "", "order_no": "JY1", "cod_amount": "0", "stockout_no": 7}) == {
        "tid": "JY1",
        "term": "1",
        "label": "SO-7",
    }
    assert m({"src_tid": "0", "cod_amount": 5})["tid"] == "0", "a present '0' is a value, not a fallback"


def test_formula_errors_at_run_time_name_the_field() -> None:
    m = mapping({"x": {"expr": "a / b"}, "y": {"expr": "a * 2"}}, key="id")
    with pytest.raises(MappingError) as caught:
        m({"id": 9, "a": 1, "b": "0"})
    assert (caught.value.key, caught.value.field) == (9, "x") and "divides by zero" in caught.value.message
    with pytest.raises(MappingError) as caught:
        m({"id": 9, "a": "abc", "b": 1})
    assert "'abc' is not a number" in caught.value.message


def test_each_maps_lists_with_parent_access_filters_and_nesting() -> None:
    m = mapping(
        {
            "lines": {
                "each": "details_list",
                "filter": "gift_type == '0'",
                "fields": {
                    "sku": "spec_no",
                    "shop": {"from": "$parent.shop_no"},
                    "qty": {"from": "goods_count", "type": "int"},
                    "parts": {
                        "each": "parts",
                        "fields": {"name": "n", "shop": "$parent.$parent.shop_no", "root": "$root.shop_no"},
                    },
                },
            },
            "long_form": {"each": {"from": "details_list", "fields": {"sku": "spec_no"}}},
        }
    )
    record = {
        "shop_no": "S1",
        "details_list": [
            {"spec_no": "A", "goods_count": "2.0000", "gift_type": "0", "parts": [{"n": "p"}]},
            {"spec_no": "G", "gift_type": "1"},
            "not an object",
        ],
    }
    out = m(record)
    assert out["lines"] == [
        {"sku": "A", "shop": "S1", "qty": 2, "parts": [{"name": "p", "shop": "S1", "root": "S1"}]}
    ]
    assert out["long_form"] == [{"sku": "A"}, {"sku": "G"}, {"sku": None}]
    assert m({})["lines"] == []


def test_errors_inside_lists_carry_the_item_position() -> None:
    m = mapping({"lines": {"each": "l", "fields": {"qty": {"from": "q", "type": "int"}}}}, key="no")
    with pytest.raises(MappingError) as caught:
        m({"no": "CK9", "l": [{"q": 1}, {"q": 2}, {"q": "x"}]})
    assert (caught.value.key, caught.value.field) == ("CK9", "lines[2].qty")


def test_nested_objects_from_the_same_record_or_a_sub_record() -> None:
    m = mapping(
        {
            "receiver": {"fields": {"name": "receiver_name", "zip": {"from": "receiver_zip", "default": ""}}},
            "track": {"from": "kuaidi100Data", "fields": {"com": "com", "stockout": "$parent.stockout_no"}},
        }
    )
    assert m({"receiver_name": "张三", "stockout_no": "CK1", "kuaidi100Data": {"com": "zto"}}) == {
        "receiver": {"name": "张三", "zip": ""},
        "track": {"com": "zto", "stockout": "CK1"},
    }


def test_target_references_are_computed_in_dependency_order() -> None:
    m = mapping(
        {
            "paid": {"expr": "sum($target.lines, amount) + $target.post", "type": "decimal", "scale": 2},
            "lines": {"each": "l", "fields": {"amount": {"expr": "p * n", "type": "decimal", "scale": 2}}},
            "post": {"from": "post_amount", "type": "decimal", "scale": 2, "default": 0},
        }
    )
    assert list(m({"l": [{"p": "1.5", "n": 2}]})) == ["paid", "lines", "post"], (
        "output keeps the spec's order"
    )
    assert m({"l": [{"p": "1.5", "n": 2}], "post_amount": "1"})["paid"] == "4.00"


def test_many_collects_per_record_errors_and_carries_on() -> None:
    m = mapping({"n": {"from": "n", "type": "int", "required": True}}, key="id")
    result = m.many([{"id": 1, "n": "1"}, {"id": 2, "n": "x"}, "junk", {"id": 4, "n": 4}, {"id": 5}])
    assert isinstance(result, BulkResult)
    assert result.records == [{"n": 1}, {"n": 4}]
    assert [(e.index, e.key, e.field) for e in result.errors] == [(1, 2, "n"), (2, None, None), (4, 5, "n")]
    assert "record #1, key 2, field n" in str(result.errors[0])


def test_specs_load_from_yaml_json_dict_and_file(tmp_path: Path) -> None:
    as_dict = {"name": "t", "fields": {"a": "x"}}
    yaml_text = "name: t\nfields:\n  a: x\n"
    file = tmp_path / "spec.yaml"
    file.write_text(yaml_text)
    for source in (as_dict, yaml_text, json.dumps(as_dict), file, str(file)):
        assert load_spec(source).fields[0].name == "a"
        assert compile_mapping(source)({"x": 1}) == {"a": 1}
    assert compile_mapping(load_spec(as_dict))({"x": 2}) == {"a": 2}


def test_source_code_is_exposed_and_spec_text_never_becomes_code() -> None:
    m = mapping({"evil": {"from": "x'); import os; ('"}, "ok": {"template": '{y}"); import os; ("'}})
    assert m({"x'); import os; ('": 1, "y": 2}) == {"evil": 1, "ok": '2"); import os; ("'}
    tree = ast.parse(m.source_code)
    assert {node.name for node in tree.body if isinstance(node, ast.FunctionDef)} == {"_map", "_key"}
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def test_a_record_that_is_not_an_object_is_a_mapping_error() -> None:
    m = mapping({"a": "a"})
    for bad in (None, [1], "text", 5):
        with pytest.raises(MappingError):
            m(bad)


def test_unknown_lookup_table_is_reported_when_compiling() -> None:
    with pytest.raises(MappingSpecError) as caught:
        mapping({"com": {"from": "carrier", "lookup": "carrier"}}, tables={"carriers": {}})
    assert caught.value.issues[0].path == "fields.com"
    assert "did you mean 'carriers'" in caught.value.issues[0].message


def test_list_fields_that_read_only_the_parent_are_worked_out_once_but_fail_like_any_other() -> None:
    m = mapping(
        {"lines": {"each": "l", "fields": {"shop": {"from": "$parent.shop", "required": True}, "x": "x"}}},
        key="id",
    )
    assert m({"id": 1, "l": [], "shop": None}) == {"lines": []}, "an empty list cannot fail on a parent field"
    assert m({"id": 1, "l": [{"x": 1}, {"x": 2}], "shop": "S"})["lines"] == [
        {"shop": "S", "x": 1},
        {"shop": "S", "x": 2},
    ]
    with pytest.raises(MappingError) as caught:
        m({"id": 1, "l": [{"x": 1}], "shop": ""})
    assert caught.value.field == "lines[0].shop"


def test_formula_results_keep_plain_digits_at_any_scale() -> None:
    m = mapping(
        {
            "small": {"expr": "a / 1000000000", "type": "decimal", "scale": 10},
            "zero": {"expr": "a * 0", "type": "decimal", "scale": 8},
            "two": {"expr": "a / 3", "type": "decimal", "scale": 2},
        }
    )
    assert m({"a": "1"}) == {"small": "0.0000000010", "zero": "0.00000000", "two": "0.33"}


def test_repeated_values_map_the_same_every_time() -> None:
    m = mapping(
        {
            "price": {"from": "p", "type": "decimal", "scale": 2},
            "total": {"expr": "p * n", "type": "decimal", "scale": 2},
            "lines": {"each": "l", "fields": {"p": {"from": "p", "type": "decimal", "scale": 4}}},
            "sum": {"expr": "sum($target.lines, p)", "type": "decimal", "scale": 4},
        }
    )
    records = [
        {"p": value, "n": 2, "l": [{"p": value}]}
        for value in ["1.5", "1.5", "-1.5", "1.5", " 1.5", "1.50"] * 3
    ]
    outputs = [m(record) for record in records]
    assert {o["price"] for o in outputs} == {"1.50", "-1.50"}
    assert {o["total"] for o in outputs} == {"3.00", "-3.00"}
    assert {o["sum"] for o in outputs} == {"1.5000", "-1.5000"}
    with pytest.raises(MappingError):
        m({"p": "NaN"})
    with pytest.raises(MappingError):
        m({"p": "1", "n": "Infinity"})


def test_values_in_a_branch_not_taken_are_never_converted() -> None:
    m = mapping(
        {
            "a": {"expr": "price * 2 if kind == 'n' else 0"},
            "b": {"expr": "kind == 'n' and price * 2 > 1"},
            "c": {"expr": "sum(lines, price)"},
            "d": {"from": "x", "when": "kind == 'n' and price > 1"},
        }
    )
    assert m({"kind": "t", "price": "n/a", "x": 1}) == {
        "a": Decimal(0),
        "b": False,
        "c": Decimal(0),
        "d": None,
    }
    with pytest.raises(MappingError):
        m({"kind": "n", "price": "n/a"})
