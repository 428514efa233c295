"""A browser that follows a wrong address into the portal gets the portal's error page, not JSON; the
portal's and admin's APIs, and anything not asking for HTML, keep answering problem+json."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Gateway
from tests.portal.conftest import Session

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize("path", ["/admin/nope", "/portal/apps/abc", "/portal/no/such/page"])
async def test_a_signed_in_browser_gets_a_page_for_an_address_no_page_has(
    admin_session: Session, path: str
) -> None:
    answer = await admin_session.http.get(path, headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Not Found" in answer.text and "<html" in answer.text


@pytest.mark.parametrize("path", ["/admin/api/nope", "/portal/api/nope", "/admin/nope"])
async def test_apis_and_non_browsers_keep_problem_json(gateway: Gateway, path: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        headers = BROWSER if "/api/" in path else {"accept": "application/json"}
        answer = await http.get(path, headers=headers)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404
