"""Every admin page and management API endpoint refuses developers and strangers. The cases are
generated from the app's route table, so a route added later is checked without a new test."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import httpx
import pytest
from litestar.routes import HTTPRoute

from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import SECRET_KEY, Gateway
from tests.portal.conftest import Session, make_account, sign_in

# The refusal as the error page says it (in Chinese, the default language).
ADMIN_ONLY = "此操作需要管理员账户"
_PARAM = re.compile(r"\{(\w+):(\w+)\}")


def _admin_routes() -> list[tuple[str, str]]:
    # Built at collection from the composition root, with a throwaway SQLite path it never opens, and
    # without taking over this process's logging (the tests' fixtures bind the real database later).
    settings = load_settings(
        {
            "UNIGATE_VAR_DIR": str(Path(tempfile.gettempdir()) / "unigate-routes"),
            "UNIGATE_SECRET_KEY": SECRET_KEY,
        }
    )
    with mock.patch("gateway.logs.configure"):
        app = create_app(settings)
    cases = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not (
            route.path == "/admin" or route.path.startswith("/admin/")
        ):
            continue
        for method in sorted(route.route_handler_map):
            if method not in ("HEAD", "OPTIONS"):
                cases.append((method, route.path))
    return sorted(cases)


ADMIN_ROUTES = _admin_routes()


def _concrete(path: str) -> str:
    return _PARAM.sub(lambda m: "1" if m.group(2) == "int" else "x", path)


def test_the_route_table_has_admin_pages_and_api() -> None:
    paths = {path for _, path in ADMIN_ROUTES}
    assert "/admin" in paths and "/admin/api/connections" in paths and "/admin/api/plans" in paths
    assert len(ADMIN_ROUTES) > 40


@pytest.fixture(scope="module")
async def one_developer(gateway: Gateway) -> AsyncIterator[Session]:
    """One signed-in developer for every route (signing in costs an argon2 verification)."""
    session = await sign_in(gateway.url, await make_account("developer", prefix="iso"))
    await session.get("/portal")  # a CSRF token, so a refusal is the guard's and not CSRF's
    try:
        yield session
    finally:
        await session.http.aclose()


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
async def test_a_developer_is_refused(one_developer: Session, method: str, path: str) -> None:
    dev_session = one_developer
    answer = await dev_session.call(method, _concrete(path), json={} if method != "GET" else None)
    assert answer.status_code == 403, answer.text
    if path.startswith("/admin/api/"):
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "forbidden"
    else:
        assert ADMIN_ONLY in answer.text


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
async def test_a_stranger_is_sent_to_sign_in(gateway: Gateway, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        if path.startswith("/admin/api/"):
            # An API key of a consumer is no admin token either.
            answer = await http.request(
                method, _concrete(path), headers={"Authorization": f"Bearer {gateway.key}"}, json={}
            )
            assert answer.status_code == 401, answer.text
            assert answer.json()["code"] == "unauthorized"
        elif method == "GET":
            answer = await http.get(_concrete(path))
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/portal/login?next=/admin")
        else:
            answer = await http.request(method, _concrete(path))
            # Without a session there is no CSRF cookie either: refused before anything runs.
            assert answer.status_code in (303, 403)
            assert ADMIN_ONLY not in answer.text


async def test_admin_only_actions_on_app_pages_refuse_developers(dev_session: Session) -> None:
    """The one admin action outside /admin: limit overrides on an app's page."""
    page = await dev_session.get("/portal")
    answer = await dev_session.form("/portal/apps", {"name": f"iso-{id(page)}"})
    app_path = answer.headers["location"]
    refused = await dev_session.form(f"{app_path}/policy", {"overrides": '{"quotas": {"per_day": 1}}'})
    assert refused.status_code == 403
    assert ADMIN_ONLY in refused.text
