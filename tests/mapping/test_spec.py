"""Checks when a spec is loaded: every problem at once, each at its place, in words an admin can act on."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mapping import MappingSpecError, SpecIssue, compile_mapping, load_spec


def issues_of(spec: Any, **kwargs: Any) -> list[SpecIssue]:
    with pytest.raises(MappingSpecError) as caught:
        compile_mapping(spec, **kwargs)
    return caught.value.issues


def places(spec: Any, **kwargs: Any) -> dict[str, str]:
    return {issue.path: issue.message for issue in issues_of(spec, **kwargs)}


SOURCE = {
    "fields": ["stockout_no", "status", "shop_no", "details_list[*].goods_count", "details_list.spec_no"]
}


def test_unknown_source_paths_are_named_where_they_are_used() -> None:
    found = places(
        {
            "name": "t",
            "source": SOURCE,
            "key": "stockout_nr",
            "fields": {
                "shop": "shop_number",
                "order_list": {"each": "details_list", "fields": {"num": "goods_cnt", "sku": "spec_no"}},
                "paid": {"expr": "sum(details_list, goods_count * price)"},
                "name": {"template": "{shop_no}-{stock}"},
                "top": {"from": "$parent.status"},
            },
        }
    )
    assert set(found) == {
        "key",
        "fields.shop",
        "fields.order_list.each.fields.num",
        "fields.paid",
        "fields.name",
        "fields.top",
    }
    assert (
        "'goods_cnt' is not a field of the source (inside the list 'details_list')"
        in found["fields.order_list.each.fields.num"]
    )
    assert "did you mean 'details_list.goods_count'" in found["fields.order_list.each.fields.num"]
    assert "'price'" in found["fields.paid"]
    assert "above the top record" in found["fields.top"]


def test_the_long_each_form_reports_the_same_places() -> None:
    found = places(
        {
            "name": "t",
            "source": SOURCE,
            "fields": {"order_list": {"each": {"from": "details_lists", "fields": {"num": "goods_cnt"}}}},
        }
    )
    assert set(found) == {"fields.order_list.each", "fields.order_list.each.fields.num"}


def test_all_problems_are_reported_at_once() -> None:
    issues = issues_of(
        {
            "nam": "t",
            "fields": {
                "a": {"form": "x"},
                "b": {"from": "x", "fn": ["upcase"]},
                "c": {"from": "x", "type": "int", "scale": 2},
                "d": {"from": "x", "split": ",", "type": "decimal"},
                "e": {"const": "abc", "type": "int"},
                "f": {"from": "x", "map": {"1": "maybe"}, "type": "bool", "on_unknown": "explode"},
                "g": {"from": "x", "const": 1},
                "h": {"expr": "price *"},
                "i": {"from": "x", "type": "datetime", "format": "yyyy-MM-dd hh:mm", "tz": "Mars/Base"},
                "j": {"from": "lines[x]"},
            },
        }
    )
    found = {issue.path: issue.message for issue in issues}
    assert len(issues) >= 12
    assert "did you mean 'name'" in found["nam"]
    assert "did you mean 'from'" in next(i.message for i in issues if i.path == "fields.a")
    assert "there is no function 'upcase'" in found["fields.b"] and "upper" in found["fields.b"]
    assert "'scale' only applies to type: decimal" in found["fields.c"]
    assert "list, which cannot become type: decimal" in found["fields.d"]
    assert "const does not fit type: int" in found["fields.e"]
    assert any("on_unknown" in i.message for i in issues if i.path == "fields.f")
    assert any(
        "map value for '1' does not fit type: bool" in i.message for i in issues if i.path == "fields.f"
    )
    assert "2 ways (from, const)" in found["fields.g"]
    assert "cannot be read" in found["fields.h"]
    assert {i.message.split(":")[0] for i in issues if i.path == "fields.i"} == {
        "'format' 'yyyy-MM-dd hh",
        "'tz'",
    }
    assert "bracket" in found["fields.j"]


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "lines[0].__class__",
        "[x for x in lines]",
        "lambda: 1",
        "open('/etc/passwd')",
        "a[b]",
        "a if b else (c := 1)",
        "f'{a}'",
        "a is None",
        "x in y",
        "sum(1, 2)",
        "round(a, b)",
        "max()",
        "{'a': 1}",
        "b'bytes'",
    ],
)
def test_formulas_outside_the_whitelist_are_refused(formula: str) -> None:
    issues = issues_of({"name": "t", "fields": {"x": {"expr": formula}}})
    assert [issue.path for issue in issues] == ["fields.x"]


def test_target_schema_finds_unknown_missing_and_conflicting_targets() -> None:
    found = places(
        {
            "name": "t",
            "target": {
                "fields": {
                    "tid": "string",
                    "paid": "decimal",
                    "order_list": "list",
                    "order_list.oid": "string",
                },
                "required": ["tid", "order_list.oid", "paid"],
            },
            "fields": {
                "tidd": "x",
                "paid": {"from": "p", "type": "int"},
                "order_list": {"each": "lines", "fields": {"oids": "x"}},
            },
        }
    )
    assert "the target has no field 'tidd' (did you mean 'tid'?)" in found["fields.tidd"]
    assert "is decimal, but this field converts the value to int" in found["fields.paid"]
    assert "no field 'order_list.oids'" in found["fields.order_list.each.fields.oids"]
    required = [
        i.message
        for i in issues_of({"name": "t", "target": {"required": ["tid", "x.y"]}, "fields": {"a": "a"}})
    ]
    assert required == [
        "the target requires 'tid', but no field of this spec fills it",
        "the target requires 'x.y', but no field of this spec fills it",
    ]


def test_source_schema_types_catch_lists_used_as_values() -> None:
    found = places(
        {
            "name": "t",
            "source": {"fields": {"lines": "list", "lines.qty": "decimal", "paid": "decimal"}},
            "fields": {
                "a": {"from": "lines", "type": "decimal"},
                "b": {"each": "paid", "fields": {"x": "x"}},
                "c": {"expr": "lines + 1"},
            },
        }
    )
    assert set(found) == {"fields.a", "fields.b.each", "fields.b.each.fields.x", "fields.c"}


def test_target_references_must_exist_and_not_go_round_in_circles() -> None:
    found = places(
        {
            "name": "t",
            "fields": {
                "a": {"expr": "$target.b + 1"},
                "b": {"expr": "$target.a + 1"},
                "c": {"from": "$target.nothing"},
            },
        }
    )
    assert "circle" in found["fields.a"]
    assert "this spec maps no top-level field 'nothing'" in found["fields.c"]


def test_unreadable_documents_are_one_clear_issue() -> None:
    for bad in ("name: [unclosed", "just text", "- a list\n- of things", 42):
        issues = issues_of(bad)
        assert len(issues) == 1 and issues[0].path == ""


def test_load_spec_leaves_lookup_tables_to_compile_time() -> None:
    spec = load_spec({"name": "t", "fields": {"com": {"from": "carrier", "lookup": "carriers"}}})
    with pytest.raises(MappingSpecError):
        compile_mapping(spec)
    assert compile_mapping(spec, tables={"carriers": {"中通": "zhongtong"}})({"carrier": "中通"}) == {
        "com": "zhongtong"
    }


def test_issue_text_is_what_an_admin_reads() -> None:
    issue = issues_of({"name": "t", "fields": {"a": {"from": "x", "type": "number"}}})[0]
    assert (
        str(issue) == "fields.a: type 'number' is not known; use one of string, int, decimal, bool, datetime"
    )


def test_refuse_is_checked_when_the_spec_is_loaded() -> None:
    found = places(
        {
            "name": "t",
            "fields": {
                "alone": {"from": "status", "refuse": {"5": "cancelled"}},
                "blank": {"from": "status", "map": {"95": "50"}, "refuse": {"5": " "}},
                "both": {"from": "status", "map": {"95": "50", "5": "90"}, "refuse": {"5": "cancelled"}},
            },
        }
    )
    assert found == {
        "fields.alone": "'refuse' only applies together with 'map' or 'lookup'",
        "fields.blank": "'refuse' takes pairs of 'source value: why it is refused', e.g. refuse: {'5': ...}",
        "fields.both": "'5' is both mapped and refused; choose one",
    }
