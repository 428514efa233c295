"""The vendors' signing algorithms against the test vectors in protocols.md."""

from gateway.connectors.kuaidi100.sign import sign as kd100_sign
from gateway.connectors.wangdiantong.sign import pack
from gateway.connectors.wangdiantong.sign import sign as wdt_sign

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
