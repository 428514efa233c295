"""The vendors' signing algorithms against the test vectors in protocols.md."""

import urllib.parse
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.connectors.kuaidi100.sign import sign as kd100_sign
from gateway.connectors.wangdiantong.client import WdtClient
from gateway.connectors.wangdiantong.sign import pack
from gateway.connectors.wangdiantong.sign import sign as wdt_sign
from gateway.upstream import Upstream

WDT_PARAMS = {
    "appkey": "test2-xx",
    "sid": "test2",
    "timestamp": "1470042310",
    "start_time": "2016-08-01 12:00:00",
    "end_time": "2016-08-01 13:00:00",
    "page_no": "0",
    "page_size": "40",
}


def test_wangdiantong_packs_params_in_key_order_with_lengths() -> None:
    assert pack(WDT_PARAMS) == (
        "06-appkey:0008-test2-xx;08-end_time:0019-2016-08-01 13:00:00;07-page_no:0001-0;"
        "09-page_size:0002-40;03-sid:0005-test2;10-start_time:0019-2016-08-01 12:00:00;"
        "09-timestamp:0010-1470042310"
    )


def test_wangdiantong_sign_matches_the_documented_example() -> None:
    assert wdt_sign(WDT_PARAMS, "12345") == "ad4e6fe037ea6e3ba4768317be9d1309"


def test_wangdiantong_sign_ignores_an_existing_sign_and_counts_characters_not_bytes() -> None:
    assert wdt_sign({**WDT_PARAMS, "sign": "x"}, "12345") == "ad4e6fe037ea6e3ba4768317be9d1309"
    assert pack({"shop_name": "天猫旗舰店"}) == "09-shop_name:0005-天猫旗舰店"


def test_kuaidi100_sign_matches_the_documented_example() -> None:
    param = '{"com":"yuantong","num":"YT123456"}'
    assert kd100_sign(param, "testkey", "testcustomer") == "E9737726D920E7496280F60644BBFC56"


def test_wangdiantong_signed_body_carries_the_documented_sign() -> None:
    client = WdtClient(
        base_url="http://127.0.0.1:9", sid="test2", appkey="test2-xx", appsecret="12345",
        upstream=Upstream(), clock=lambda: 1470042310.5,
    )  # fmt: skip
    params = {key: WDT_PARAMS[key] for key in ("start_time", "end_time", "page_no", "page_size")}
    body = dict(urllib.parse.parse_qsl(client.signed_body(params).decode(), keep_blank_values=True))
    assert body == {**WDT_PARAMS, "sign": "ad4e6fe037ea6e3ba4768317be9d1309"}


form_text = st.text(max_size=20)
form_value = st.one_of(st.none(), form_text, st.integers(), st.lists(st.integers(), max_size=3))


@given(st.dictionaries(form_text, form_value, max_size=10), st.integers(0, 2**32))
@example({"page_no": 1, "sid": "theirs", "sign": "x", "timestamp": "1"}, 5)  # keys the client sets itself
def test_wangdiantong_signed_body_is_the_signed_form_urlencoded(params: dict[str, Any], now: int) -> None:
    """The one-pass body (the way out sends it) against the plain path: sign the form, then urlencode it."""
    client = WdtClient(
        base_url="http://127.0.0.1:9", sid="s1", appkey="天猫 key", appsecret="secret",
        upstream=Upstream(), clock=lambda: now,
    )  # fmt: skip
    expected = urllib.parse.urlencode(client.signed_form(params)).encode()
    assert client.signed_body(params) == expected
    assert client.signed_body(params) == expected  # and again once its parts are remembered
