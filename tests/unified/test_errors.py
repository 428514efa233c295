"""Every bad input and every backend failure gets an RFC 9457 problem naming what is wrong."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest


def _problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"status": "lost"}, "status"),
        ({"updated_from": "yesterday"}, "updated_from"),
        (
            {"updated_from": "2026-03-02T00:00:00+08:00", "updated_to": "2026-03-01T00:00:00+08:00"},
            "updated_from",
        ),
        # Times no backend can be asked about (they used to be a 500, or a vendor_error)
        ({"updated_from": "0001-01-01T00:00:00+08:00"}, "updated_from"),
        ({"updated_from": "0001-01-01T00:00:00-08:00"}, "updated_from"),
        ({"updated_to": "0001-01-02T00:00:00+08:00"}, "updated_to"),
        (
            {"updated_from": "9999-12-01T00:00:00+08:00", "updated_to": "9999-12-31T23:59:59-10:00"},
            "updated_from",
        ),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"include": "everything"}, "include"),
        ({"include": ""}, "include"),  # a blank asked for nothing: it used to turn remote_data on
        ({"include": " , "}, "include"),
        # A misspelt filter would otherwise be ignored: every warehouse's stockouts for a caller who filtered
        ({"warehouse_code": "SH01"}, "warehouse_code"),
        ({"limit": 5, "Status": "shipped"}, "Status"),
        ([("status", "shipped"), ("status", "approved")], "status"),  # not only the first, silently
    ],
)
async def test_bad_list_parameters_name_the_field(
    client: httpx.AsyncClient, params: dict | list, field: str
) -> None:
    body = _problem(await client.get("/v1/stockouts", params=params), 400, "invalid_parameter")
    assert body["field"] == field


@pytest.mark.parametrize("path", ["/v1/stockouts", "/v1/orders"])
async def test_a_range_reaching_into_the_future_is_refused_and_one_ending_now_is_not(
    client: httpx.AsyncClient, path: str
) -> None:
    """A walk cannot be complete for a time that has not come: a record changing after the walk passed
    its page would be in neither this walk nor the caller's next range (which starts at updated_to)."""
    now = datetime.now(UTC)
    later = {
        "updated_from": (now - timedelta(hours=1)).isoformat(),
        "updated_to": (now + timedelta(minutes=5)).isoformat(),
    }
    body = _problem(await client.get(path, params=later), 400, "invalid_parameter")
    assert body["field"] == "updated_to" and "later than now" in body["detail"]
    ending_now = {**later, "updated_to": now.isoformat(), "limit": 1}
    assert (await client.get(path, params=ending_now)).status_code == 200


@pytest.mark.parametrize("left_out", ["carrier", "tracking_no"])
async def test_a_required_query_parameter_left_out_is_named(client: httpx.AsyncClient, left_out: str) -> None:
    params = {"carrier": "zhongtong", "tracking_no": "ZT1"}
    del params[left_out]
    body = _problem(await client.get("/v1/logistics/tracking", params=params), 400, "invalid_parameter")
    assert body["field"] == left_out
    assert body["detail"] == f"{left_out}: this query parameter is required"


async def test_unknown_connection_is_refused_as_an_ungranted_one(client: httpx.AsyncClient) -> None:
    """test-app is not granted `*`: a name that does not exist must not read differently from one that
    exists but is not granted (tests/unified/test_connection_grants.py has the 400 of a `*` grant)."""
    body = _problem(
        await client.get("/v1/stockouts", headers={"X-Connection": "nope"}), 403, "connection_not_granted"
    )
    assert body["field"] == "X-Connection"
    assert "'nope'" in body["detail"] and "ask an admin" in body["detail"]


async def test_an_operation_the_system_lacks_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/logistics/tracking",
        params={"carrier": "zhongtong", "tracking_no": "1"},
        headers={"X-Connection": "wdt-demo"},
    )
    _problem(response, 501, "unsupported_operation")


async def test_a_wrong_sign_surfaces_the_vendor_envelope(client: httpx.AsyncClient) -> None:
    body = _problem(
        await client.get("/v1/stockouts", headers={"X-Connection": "wdt-badsign"}), 502, "vendor_error"
    )
    assert body["vendor"]["system"] == "wangdiantong"
    assert body["vendor"]["code"] not in ("", "0")
    assert body["vendor"]["message"]
    assert "not-the-secret" not in str(body)


async def test_kuaidi100_sign_failure_is_a_vendor_error(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/logistics/tracking",
        params={"carrier": "yuantong", "tracking_no": "YT0000000000"},
        headers={"X-Connection": "kd100-badsign"},
    )
    body = _problem(response, 502, "vendor_error")
    assert body["vendor"] == {"system": "kuaidi100", "code": "503", "message": body["vendor"]["message"]}


async def test_an_unreachable_backend_is_upstream_unavailable(client: httpx.AsyncClient) -> None:
    _problem(
        await client.get("/v1/stockouts", headers={"X-Connection": "wdt-down"}), 502, "upstream_unavailable"
    )


async def test_unknown_route_is_a_problem_too(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert body["title"] == "Not Found"
    answer = await client.delete("/v1/stockouts")
    body = _problem(answer, 405, "method_not_allowed")
    allowed = {method.strip() for method in answer.headers["allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed
    assert body["title"] == "Method Not Allowed" and "GET" in body["detail"]


@pytest.mark.parametrize(
    ("sent", "said"), [(b"{not json", "JSON is malformed"), (b'{"platform_order_id": "A', "truncated")]
)
async def test_a_body_that_is_not_json_is_a_bad_parameter_naming_the_body(
    client: httpx.AsyncClient, sent: bytes, said: str
) -> None:
    answer = await client.post("/v1/orders", content=sent, headers={"content-type": "application/json"})
    body = _problem(answer, 400, "invalid_parameter")
    assert body["field"] == "body" and said in body["detail"]


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/stockouts", params={"limit": 1}, headers={"X-Request-ID": "trace-me-123"}
    )
    assert response.headers["x-request-id"] == "trace-me-123"


async def test_a_request_id_that_is_not_an_id_is_replaced_not_echoed(client: httpx.AsyncClient) -> None:
    # 8 KB of text or markup would otherwise go back in a header and a body and into every log line.
    for sent in ("x" * 8000, "abc def<script>", ""):
        for path in ("/v1/stockouts?limit=1", "/v1/stockouts?limit=0", "/v1/nowhere"):
            response = await client.get(path, headers={"X-Request-ID": sent})
            echoed = response.headers["x-request-id"]
            assert echoed != sent and len(echoed) == 32 and int(echoed, 16) >= 0, (path, echoed)
            if response.status_code >= 400:
                assert response.json()["request_id"] == echoed


async def test_a_backend_that_hangs_is_a_504(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/stockouts", params={"limit": 1}, headers={"X-Connection": "wdt-hangs"})
    _problem(response, 504, "upstream_timeout")


async def test_the_vendors_too_frequent_answer_is_retried_with_backoff(client: httpx.AsyncClient) -> None:
    """The throttled ERP allows 2 calls a second; 6 requests at once all succeed, later."""
    import asyncio

    headers = {"X-Connection": "wdt-throttled"}
    responses = await asyncio.gather(
        *(client.get("/v1/stockouts", params={"limit": 1}, headers=headers) for _ in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6, [
        r.text for r in responses if r.status_code != 200
    ]


def _edited(cursor: str, **changes: object) -> str:
    state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return base64.urlsafe_b64encode(json.dumps({**state, **changes}).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "changes",
    [
        {"size": 1000},  # was the vendor's page_size refusal, a 502
        {"page": -1},  # a 502 too
        {"passes": ["7"]},  # a 502 too
        {"step": 99},  # was a 500
        {"passes": []},  # a 500 too
        {"end": 10**12},  # a 500 once the walk reached the year 10000
        {"window": 0},
        {"keep": "lost"},
    ],
)
async def test_an_edited_cursor_is_refused_naming_the_cursor(
    client: httpx.AsyncClient, changes: dict[str, object]
) -> None:
    cursor = (await client.get("/v1/stockouts", params={"limit": 1})).json()["next_cursor"]
    answer = await client.get("/v1/stockouts", params={"cursor": _edited(cursor, **changes)})
    assert _problem(answer, 400, "invalid_parameter")["field"] == "cursor"


async def test_a_cursor_of_one_list_is_refused_by_another(client: httpx.AsyncClient) -> None:
    cursor = (await client.get("/v1/stockouts", params={"limit": 1})).json()["next_cursor"]
    answer = await client.get("/v1/orders", params={"cursor": cursor})
    assert _problem(answer, 400, "invalid_parameter")["field"] == "cursor"
