"""A cursor continues the list that made it, on the connection that made it: other filters or another
connection sent with it are refused (400, `field: cursor`), the same filters re-sent are not; and the
list and single reads read their query parameters strictly (limit in digits, no unknown names)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest

from gateway.connectors.simdata import generate_trades
from tests.conftest import SEED, Simulators


def _problem(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid_parameter", field), body
    return str(body["detail"])


def _lists(simulators: Simulators) -> dict[str, dict[str, Any]]:
    """Each list's first-page filters, all of them set, so that changing any one can be seen."""
    end = simulators.anchor
    return {
        "/v1/stockouts": {
            "updated_from": (end - timedelta(days=3)).isoformat(),
            "updated_to": end.isoformat(),
            "status": "shipped",
            "limit": "5",
        },
        "/v1/orders": {
            "updated_from": (end - timedelta(hours=5)).isoformat(),
            "updated_to": end.isoformat(),
            "status": "shipped",
            "limit": "2",
        },
    }


async def _cursor(client: httpx.AsyncClient, path: str, params: dict[str, Any], **headers: str) -> str:
    page = await client.get(path, params=params, headers=headers)
    assert page.status_code == 200, page.text
    assert page.json()["items"], "the first page should list something"
    cursor = page.json()["next_cursor"]
    assert cursor, "the first page should not be the last"
    return str(cursor)


# Each filter changed from the first page's: to another value, or sent where the first page left it out.
CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("status", {"/v1/stockouts": "approved", "/v1/orders": "paid"}),
    ("limit", {"/v1/stockouts": "6", "/v1/orders": "3"}),
    ("include", {"/v1/stockouts": "remote_data", "/v1/orders": "remote_data"}),
    ("shop", {"/v1/stockouts": "SHOP-ELSE", "/v1/orders": "SHOP-ELSE"}),
    ("warehouse", {"/v1/stockouts": "WH-ELSE", "/v1/orders": "WH-ELSE"}),
]


@pytest.mark.parametrize("path", ["/v1/stockouts", "/v1/orders"])
@pytest.mark.parametrize(("name", "values"), CHANGES, ids=[name for name, _ in CHANGES])
async def test_a_cursor_with_another_filter_is_refused_naming_it(
    client: httpx.AsyncClient, simulators: Simulators, path: str, name: str, values: dict[str, Any]
) -> None:
    first = _lists(simulators)[path]
    cursor = await _cursor(client, path, first)
    answer = await client.get(path, params={**first, name: values[path], "cursor": cursor})
    detail = _problem(answer, "cursor")
    assert f"other filters ({name})" in detail
    # Sent alone, the cursor still continues its own list.
    assert (await client.get(path, params={"cursor": cursor})).status_code == 200


@pytest.mark.parametrize("path", ["/v1/stockouts", "/v1/orders"])
@pytest.mark.parametrize("end", ["updated_from", "updated_to"])
async def test_a_cursor_with_another_time_range_is_refused(
    client: httpx.AsyncClient, simulators: Simulators, path: str, end: str
) -> None:
    first = _lists(simulators)[path]
    cursor = await _cursor(client, path, first)
    moved = (simulators.anchor - timedelta(hours=1, minutes=30)).isoformat()
    detail = _problem(await client.get(path, params={**first, end: moved, "cursor": cursor}), "cursor")
    assert f"({end})" in detail
    # Every differing filter is named, not only the first.
    both = {**first, end: moved, "status": "cancelled", "cursor": cursor}
    assert f"({end}, status)" in _problem(await client.get(path, params=both), "cursor")


async def test_the_reported_case_shipped_cursor_with_paid_is_refused(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    first = _lists(simulators)["/v1/orders"]
    cursor = await _cursor(client, "/v1/orders", first)
    answer = await client.get("/v1/orders", params={"status": "paid", "cursor": cursor})
    detail = _problem(answer, "cursor")
    assert detail == (
        "this cursor belongs to a list with other filters (status); "
        "send the same filters as the first page, or none"
    )


async def test_re_sending_the_first_pages_filters_walks_the_same_list(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """Generic client code re-sends the original URL plus the cursor; times may be re-spelt (same instant)."""
    end = simulators.anchor
    first = {
        "updated_from": (end - timedelta(days=2)).isoformat(),
        "updated_to": end.isoformat(),
        "limit": "40",
    }
    utc = {
        "updated_from": (end - timedelta(days=2)).astimezone(UTC).isoformat(),
        "updated_to": end.astimezone(UTC).isoformat(),
    }

    async def pages(resend: dict[str, Any]) -> list[list[str]]:
        seen: list[list[str]] = []
        params = dict(first)
        for _ in range(4):
            page = await client.get("/v1/stockouts", params=params)
            assert page.status_code == 200, page.text
            seen.append([item["stockout_no"] for item in page.json()["items"]])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            params = {**resend, "cursor": cursor}
        return seen

    alone = await pages({})
    assert len(alone) == 4 and all(alone)  # several real pages
    assert await pages(first) == alone
    assert await pages({**first, **utc}) == alone


async def test_a_first_page_without_updated_to_is_continued_with_its_url(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """updated_to left out means "now", which has moved on by the next page: not compared with the cursor."""
    first = {"updated_from": (simulators.anchor - timedelta(hours=3)).isoformat(), "limit": "1"}
    cursor = await _cursor(client, "/v1/orders", first)
    again = await client.get("/v1/orders", params={**first, "cursor": cursor})
    assert again.status_code == 200, again.text
    assert again.json()["items"] or again.json()["next_cursor"] is None


async def test_a_cursor_of_another_connection_is_refused_naming_both(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    first = _lists(simulators)["/v1/stockouts"]
    cursor = await _cursor(client, "/v1/stockouts", first)  # the application's default: wdt-demo
    answer = await client.get(
        "/v1/stockouts", params={"cursor": cursor}, headers={"X-Connection": "wdt-target"}
    )
    detail = _problem(answer, "cursor")
    assert "this cursor was made by connection wdt-demo, not wdt-target" in detail
    # Naming the connection that made it is no change.
    same = await client.get("/v1/stockouts", params={"cursor": cursor}, headers={"X-Connection": "wdt-demo"})
    assert same.status_code == 200, same.text

    orders_cursor = await _cursor(
        client,
        "/v1/orders",
        {"updated_from": (simulators.anchor - timedelta(hours=1)).isoformat(), "limit": "1"},
        **{"X-Connection": "wdt-demo"},
    )
    back = await client.get(
        "/v1/orders", params={"cursor": orders_cursor}, headers={"X-Connection": "wdt-target"}
    )
    assert "made by connection wdt-demo, not wdt-target" in _problem(back, "cursor")


async def test_a_cursor_without_its_connection_is_refused_by_every_connection(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    """Edited to drop the connection that made it, a cursor is not taken by another one (it was, and
    walked that connection's windows with the first's pages)."""
    cursor = await _cursor(client, "/v1/stockouts", _lists(simulators)["/v1/stockouts"])
    state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert state.pop("connection") == "wdt-demo"
    edited = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
    for connection in ("wdt-demo", "wdt-target"):
        answer = await client.get(
            "/v1/stockouts", params={"cursor": edited}, headers={"X-Connection": connection}
        )
        assert "not one this API returned" in _problem(answer, "cursor")


LIMITS = ["1e1", "10.0", "+5", " 5", "5 ", "٣", "0x10", "", "0", "000", "101", "1" * 5000]


@pytest.mark.parametrize("limit", LIMITS, ids=[repr(limit[:8]) for limit in LIMITS])
@pytest.mark.parametrize("path", ["/v1/stockouts", "/v1/orders"])
async def test_limit_is_plain_digits_only(client: httpx.AsyncClient, path: str, limit: str) -> None:
    detail = _problem(await client.get(path, params={"limit": limit}), "limit")
    assert detail == "limit must be a whole number from 1 to 100, in digits"


async def test_limit_with_leading_zeros_is_the_number(client: httpx.AsyncClient) -> None:
    for limit, size in (("05", 5), ("0005", 5), ("100", 100), ("0100", 100), ("0" * 5000 + "7", 7)):
        page = await client.get("/v1/stockouts", params={"limit": limit})
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == size


async def test_a_future_updated_from_alone_names_the_default_end(client: httpx.AsyncClient) -> None:
    detail = _problem(
        await client.get("/v1/orders", params={"updated_from": "2999-01-01T00:00:00"}), "updated_from"
    )
    assert detail == "updated_from is after updated_to, which defaults to now"
    both = {"updated_from": "2999-01-02T00:00:00+08:00", "updated_to": "2999-01-01T00:00:00+08:00"}
    detail = _problem(await client.get("/v1/orders", params=both), "updated_from")
    assert detail == "updated_from must not be after updated_to"


async def test_single_reads_refuse_query_parameters_they_do_not_take(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    stockout = (await client.get("/v1/stockouts", params={"limit": 1})).json()["items"][0]["stockout_no"]
    order = generate_trades(SEED, simulators.anchor)[3]["trade_no"]
    refused = [
        (f"/v1/stockouts/{stockout}", {"foo": "1"}, "foo", "it takes include"),
        (f"/v1/stockouts/{stockout}/tracking", {"foo": "1"}, "foo", "it takes none"),
        (f"/v1/stockouts/{stockout}/tracking", {"include": "remote_data"}, "include", "it takes none"),
        (f"/v1/orders/{order}", {"limit": "5"}, "limit", "it takes include"),
        (
            f"/v1/orders/{order}",
            [("include", "remote_data"), ("include", "remote_data")],
            "include",
            "more than once",
        ),
    ]
    for path, params, field, says in refused:
        detail = _problem(await client.get(path, params=params), field)
        assert says in detail, (path, detail)
    # What they do take still works.
    for path in (f"/v1/stockouts/{stockout}", f"/v1/orders/{order}"):
        read = await client.get(path, params={"include": "remote_data"})
        assert read.status_code == 200, read.text
        assert read.json()["remote_data"]
