"""Decoding a vendor answer into only what its mapping reads gives the same canonical records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import pytest

from gateway.connectors import simdata
from gateway.connectors.base import load_mappings
from gateway.connectors.simdata import CHINA_TZ
from gateway.connectors.wangdiantong import connector as wdt
from gateway.mapping import load_spec
from gateway.mapping.reads import ITEMS, WHOLE, read_tree
from gateway.upstream import json_answer

ANCHOR = datetime(2026, 3, 1, 12, 0, 0, tzinfo=CHINA_TZ)
MAPPINGS = load_mappings(wdt.MAPPINGS, ["stockout", "order"], wdt._tables())
SEED = simdata.generate_seed(7, ANCHOR, 300)


def _answer(node: str, records: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"code": 0, "message": "", "total_count": len(records), node: records})


def _both(resource: Any, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    decoder = wdt._answer_decoder(resource, MAPPINGS[resource.mapping])
    return json_answer("wangdiantong", 200, body), json_answer("wangdiantong", 200, body, decoder)


@pytest.mark.parametrize(
    ("resource", "records"),
    [(wdt.STOCKOUTS, SEED.stockouts), (wdt.TRADES, SEED.trades)],
    ids=["stockouts", "trades"],
)
def test_selective_answer_maps_to_the_same_records(resource: Any, records: list[dict[str, Any]]) -> None:
    mapping = MAPPINGS[resource.mapping]
    full, selective = _both(resource, _answer(resource.list_node, records))
    assert selective["total_count"] == full["total_count"] == len(records)
    assert [mapping(r) for r in selective[resource.list_node]] == [
        mapping(r) for r in full[resource.list_node]
    ]
    # ...and it really is smaller: the stockout mapping reads 34 of the vendor's 152 fields.
    assert len(selective[resource.list_node][0]) < len(full[resource.list_node][0]) / 2


def test_an_answer_that_does_not_fit_the_type_is_decoded_whole() -> None:
    odd = [dict(SEED.stockouts[0], details_list="not a list"), SEED.stockouts[1]]
    full, selective = _both(wdt.STOCKOUTS, _answer("stockout_list", odd))
    assert selective == full
    assert selective["stockout_list"][0]["details_list"] == "not a list"


def test_vendor_errors_keep_their_envelope() -> None:
    body = msgspec.json.encode({"code": 100, "message": "签名错误", "extra": [1, 2]})
    full, selective = _both(wdt.STOCKOUTS, body)
    assert selective == {"code": 100, "message": "签名错误"}
    assert full["code"] == 100


def _tree(node: Any) -> Any:
    return "whole" if node is WHOLE else {key: _tree(child) for key, child in node.items()}


def test_read_tree_follows_each_parent_root_objects_and_formulas() -> None:
    spec = load_spec(
        {
            "name": "t",
            "key": "no",
            "fields": {
                "no": "no",
                "receiver": {"from": "address", "fields": {"city": "city", "shop": "$root.shop.code"}},
                "total": {"expr": "sum(lines, price * num) + post", "type": "decimal"},
                "lines": {
                    "each": "lines",
                    "fields": {"sku": "sku", "order": "$parent.no", "first_tag": "tags[0].name"},
                },
                "raw_meta": "meta",
                "meta_kind": "meta.kind",
            },
        }
    )
    assert _tree(read_tree(spec)) == {
        "no": "whole",
        "address": {"city": "whole"},
        "shop": {"code": "whole"},
        "lines": {
            ITEMS: {
                "price": "whole",
                "num": "whole",
                "sku": "whole",
                "tags": {ITEMS: {"name": "whole"}},
            }
        },
        "post": "whole",
        "meta": "whole",  # read whole once: nothing under it may be left out
    }
