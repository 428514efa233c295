"""PII masking (policies/pii.py): the masking functions, answers for callers without `pii:read`, and log
lines and error details that never carry a receiver's number in clear."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import msgspec
import pytest

from gateway.store import policy_manage
from gateway.store.crypto import Vault
from policies import pii
from tests.conftest import Gateway
from tests.policies.backends import (
    RecordingBackend,
    add_connection,
    backends_fixture,  # noqa: F401 - the `backends` fixture
    clients,
    gateway_processes,
    wait_for_connection,
)
from tests.policies.p1_support import application, until

MOBILE = "13812345678"


@pytest.mark.parametrize(
    ("masker", "value", "masked"),
    [
        (pii.mask_mobile, "13812345678", "138****5678"),
        (pii.mask_phone, "0571-88776655", "0571-****6655"),
        (pii.mask_phone, "13812345678", "138****5678"),
        (pii.mask_id_card, "11010119900307123X", "110***********123X"),
        (pii.mask_address, "文三路100号5幢2单元301室", "文三路1****"),
        (pii.mask_address, "", ""),
        (pii.mask_text, "请联系 13812345678 或 0571-88776655", "请联系 138****5678 或 0571-****6655"),
        (pii.mask_text, "身份证 110101199003071234 已核验", "身份证 110***********1234 已核验"),
        # Written the ways people write them: with the country code, spaced or dashed.
        (pii.mask_text, "tel +8613812345678", "tel +86138****5678"),
        (pii.mask_text, "/v1/stockouts/8613812345678", "/v1/stockouts/86138****5678"),
        (pii.mask_text, "+86 138 1234 5678 或 0086-138-1234-5678", "+86 138 **** 5678 或 0086-138-****-5678"),
        (pii.mask_text, "手机138-1234-5678", "手机138-****-5678"),
        (pii.mask_query, "carrier=sf&phone=%2B8613812345678", "carrier=sf&phone=+86*******5678"),
        (pii.mask_query, "q=138%201234%205678&limit=5", "q=138 **** 5678&limit=5"),
        # Request ids, trace ids and hashes are hex: a run of digits inside one is nobody's number, and a
        # masked request id can no longer be quoted or found (one in 3,000 had a `1[3-9]` run of 11).
        (
            pii.mask_text,
            "request_id=fd8677cba8f61cd4c13131119608f491",
            "request_id=fd8677cba8f61cd4c13131119608f491",
        ),
        (pii.mask_text, "trace 057188776655abcdef0123 ok", "trace 057188776655abcdef0123 ok"),
        (pii.mask_text, "sha 9a13812345678bcdef0 13812345678", "sha 9a13812345678bcdef0 138****5678"),
        # A number with a few letters stuck to it is still a number.
        (pii.mask_text, "deface13812345678 13812345678abcde", "deface138****5678 138****5678abcde"),
        (
            pii.mask_text,
            "order 2026030100001234567 at 2026-03-01 10:00",
            "order 2026030100001234567 at 2026-03-01 10:00",
        ),
    ],
)
def test_masking_functions(masker: object, value: str, masked: str) -> None:
    assert masker(value) == masked  # type: ignore[operator]


def test_a_record_is_masked_by_field_name_at_any_depth() -> None:
    record = {
        "stockout_no": "CK2026030113800000000",
        "receiver": {"name": "张三", "mobile": MOBILE, "phone": "021-55667788", "address": "长宁路1号"},
        "remote_data": {
            "receiver_mobile": MOBILE,
            "receiver_address": "长宁路1号",
            "id_card": "110101199003071234",
        },
    }
    masked = pii.mask_record(record)
    assert masked["stockout_no"] == record["stockout_no"]  # codes that look like numbers stay as they are
    assert masked["receiver"] == {
        "name": "张三",
        "mobile": "138****5678",
        "phone": "021-****7788",
        "address": "长****",
    }
    assert masked["remote_data"]["receiver_mobile"] == "138****5678"
    assert masked["remote_data"]["id_card"] == "110***********1234"
    assert MOBILE not in str(masked)


async def _token(gateway: Gateway, consumer: int, scopes: list[str]) -> str:
    client = await policy_manage.create_oauth_client(Vault(gateway.settings.secret_key), consumer, scopes)
    async with httpx.AsyncClient(base_url=gateway.url) as http:

        async def issued() -> bool:
            answer = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, client.client_secret),
            )
            return answer.status_code == 200

        await until(issued, within=15.0, what="the new OAuth client")
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.client_secret),
        )
    return str(answer.json()["access_token"])


async def test_only_a_caller_with_pii_read_sees_receivers_and_remote_data_in_clear(gateway: Gateway) -> None:
    consumer, key, _ = await application()
    masked_token = await _token(gateway, consumer, ["stockouts:read"])
    clear_token = await _token(gateway, consumer, ["stockouts:read", "pii:read"])
    params = {"limit": 5, "include": "remote_data"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        pages = {
            name: (
                await http.get("/v1/stockouts", params=params, headers={"Authorization": f"Bearer {cred}"})
            )
            for name, cred in (("key", key), ("masked", masked_token), ("clear", clear_token))
        }
    assert {name: page.status_code for name, page in pages.items()} == {
        "key": 200,
        "masked": 200,
        "clear": 200,
    }
    clear = pages["clear"].json()["items"]
    masked = pages["masked"].json()["items"]
    assert pages["key"].json()["items"] == clear  # a key carries its application's every right
    assert [item["stockout_no"] for item in masked] == [item["stockout_no"] for item in clear]
    for seen, full in zip(masked, clear, strict=True):
        if full["receiver"]["mobile"]:
            assert seen["receiver"]["mobile"] == pii.mask_mobile(full["receiver"]["mobile"])
            assert full["receiver"]["mobile"] not in str(seen)
        assert seen["receiver"]["address"] == pii.mask_address(full["receiver"]["address"] or "")
        assert seen["remote_data"]["receiver_mobile"] == pii.mask_mobile(
            full["remote_data"]["receiver_mobile"]
        )
        assert seen["receiver"]["name"] == full["receiver"]["name"]
        assert seen["lines"] == full["lines"]


async def test_a_number_the_vendor_quotes_is_masked_in_the_error_and_the_log(
    gateway: Gateway, store: tuple[object, dict[str, str]], backends: list[RecordingBackend], tmp_path: Path
) -> None:
    backend = backends[2]
    backend.reset()
    await add_connection(gateway, "quoting-erp", backend.url, {"retries": 0})
    _, env = store
    with gateway_processes(env, 1, tmp_path, UNIGATE_LOG_LEVEL="INFO") as (url,):
        async with contextlib.AsyncExitStack() as stack:
            (http,) = await clients(stack, [url], gateway.key)
            await wait_for_connection(http, "quoting-erp")
            backend.script.append(
                (200, {}, msgspec.json.encode({"code": 2001, "message": f"收件人手机 {MOBILE} 不是有效号码"}))
            )
            refused = await http.get(
                "/v1/stockouts", params={"limit": 5}, headers={"X-Connection": "quoting-erp"}
            )
    problem = refused.json()
    assert problem["code"] == "vendor_error"
    assert problem["vendor"]["message"] == "收件人手机 138****5678 不是有效号码"
    assert MOBILE not in refused.text
    log = (tmp_path / "gateway-0.log").read_text()
    assert "138****5678" in log  # the failure was logged ...
    assert MOBILE not in log  # ... without the number
