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
        ({"lines": {"each": "items", "fields": {"kind": {"const": "goods"}}}}, {"lines": [{"kind": "goods"}]}),
    ],
    ids=["constant", "default", "target", "list-item"],
)
def test_a_spec_or_list_item_that_reads_nothing_of_its_record_compiles(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert mapping(fields)({"items": [{"x": 1}]}) == expected


def test_a_clock_only_spec_compiles() -> None:
    assert mapping({"at": {"fn": ["now"], "type": "datetime"}})({})["at"].startswith("20")
