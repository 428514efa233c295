"""A path id no database row can have (past the column's integer range) is answered 404, as any id of no
row is, on every kind of route (developer API, admin API, pages), on SQLite and PostgreSQL: not a 500
with a traceback in the log."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from portal.services import accounts
from tests.conftest import Gateway, bound_store, gateway_env, migrate
from tests.portal.conftest import Account, make_account, sign_in
from tests.services import create_database, free_port, run_process

BROWSER = {"accept": "text/html,application/xhtml+xml"}
# Past 64 bits (SQLite's INTEGER), past 32 bits (PostgreSQL's SERIAL), far past both, and below.
TOO_BIG = [2**63, 2**31, 99999999999999999999999, -(2**63) - 1]


@dataclass
class Target:
    url: str
    admin: Account
    developer: Account
    admin_token: str
    log_path: Path
    bits: int  # of the id columns: SQLite's INTEGER holds 64, PostgreSQL's SERIAL 32

    def stores(self, number: int) -> bool:
        return -(2 ** (self.bits - 1)) <= number < 2 ** (self.bits - 1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for the session's SQLite gateway, else a new PostgreSQL database."""
    return None if request.param == "sqlite" else create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="module")
async def target(
    database_url: str | None, gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    """The session's gateway over SQLite, or a gateway process of its own over a PostgreSQL database."""
    if database_url is None:
        admin = await make_account("admin")
        developer = await make_account("developer", prefix="dev")
        _, token = await accounts.create_token(admin.principal, "big ids")
        yield Target(gateway.url, admin, developer, token, gateway.log_path, 64)
        return
    env = gateway_env(tmp_path_factory.mktemp("big-ids-pg"), DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        admin = await make_account("admin")
        developer = await make_account("developer", prefix="dev")
        _, token = await accounts.create_token(admin.principal, "big ids")
    port, log_path = free_port(), tmp_path_factory.mktemp("big-ids-logs") / "gateway.log"
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env={**env, "UNIGATE_LOG_LEVEL": "INFO"},
        log_path=log_path,
        ready_url=f"http://127.0.0.1:{port}/healthz",
    ):
        yield Target(f"http://127.0.0.1:{port}", admin, developer, token, log_path, 32)


def logged_since(target: Target, start: int) -> str:
    with target.log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(start)
        return log.read()


def assert_not_found(target: Target, answer: httpx.Response, big: int) -> None:
    """404 not_found; for a number the database cannot hold, saying so (one it holds is merely no row)."""
    assert answer.status_code == 404, answer.text
    problem = answer.json()
    assert problem["code"] == "not_found"
    if not target.stores(big):
        assert f"{big}: ids are at most {2 ** (target.bits - 1) - 1}" in problem["detail"]


@pytest.mark.parametrize("big", TOO_BIG)
async def test_the_admin_api_answers_404_for_an_id_past_the_range(target: Target, big: int) -> None:
    start = target.log_path.stat().st_size
    async with httpx.AsyncClient(
        base_url=f"{target.url}/admin/api",
        headers={"Authorization": f"Bearer {target.admin_token}"},
        timeout=30,
    ) as api:
        assert_not_found(target, await api.get(f"/consumers/{big}"), big)
        assert_not_found(target, await api.patch(f"/consumers/{big}", json={"active": False}), big)
        assert_not_found(target, await api.get(f"/config/versions/{big}"), big)
        assert_not_found(target, await api.delete(f"/subscriptions/{big}"), big)
        assert_not_found(target, await api.get(f"/runs/{big}"), big)  # schemes API
        assert_not_found(target, await api.get(f"/dead-letters/{big}"), big)
        # An id in range but of no row: the same answer, as before.
        assert (await api.get("/consumers/2147483647")).status_code == 404
    assert "Traceback" not in logged_since(target, start)


async def test_the_developer_api_answers_404_for_an_id_past_the_range(target: Target) -> None:
    session = await sign_in(target.url, target.developer)
    try:
        await session.get("/portal")  # a page, for its CSRF token
        for big in TOO_BIG:
            assert_not_found(target, await session.call("GET", f"/portal/api/apps/{big}"), big)
            assert_not_found(target, await session.call("GET", f"/portal/api/apps/{big}/usage"), big)
            assert_not_found(target, await session.call("POST", f"/portal/api/apps/1/keys/{big}/revoke"), big)
            assert_not_found(target, await session.call("DELETE", f"/portal/api/subscriptions/{big}"), big)
    finally:
        await session.http.aclose()


async def test_pages_answer_their_404_page_for_an_id_past_the_range(target: Target) -> None:
    start = target.log_path.stat().st_size
    developer, admin = await sign_in(target.url, target.developer), await sign_in(target.url, target.admin)
    try:
        for big in TOO_BIG:
            for session, path in [
                (developer, f"/portal/apps/{big}"),
                (admin, f"/admin/schemes/runs/{big}"),
            ]:
                answer = await session.http.get(path, headers=BROWSER)
                assert answer.status_code == 404, (path, answer.text)
                assert answer.headers["content-type"].startswith("text/html")
                assert str(big) in answer.text and "<html" in answer.text
            await developer.get("/portal")
            answer = await developer.form(f"/portal/apps/{big}/settings", {"name": "x"})
            assert answer.status_code == 404
        # Without a session the page still asks to sign in first: the id is looked at after the guards.
        async with httpx.AsyncClient(base_url=target.url) as anonymous:
            answer = await anonymous.get(f"/portal/apps/{2**63}", headers=BROWSER)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login")
    finally:
        await developer.http.aclose()
        await admin.http.aclose()
    assert "Traceback" not in logged_since(target, start)


def assert_names(target: Target, answer: httpx.Response, name: str) -> None:
    assert answer.status_code == 400, answer.text
    problem = answer.json()
    assert problem["code"] == "invalid_parameter" and problem["field"] == name
    assert f"is past the largest number stored, {2 ** (target.bits - 1) - 1}" in problem["detail"]


async def test_int_query_parameters_past_the_range_are_refused_naming_them(target: Target) -> None:
    start = target.log_path.stat().st_size
    big, huge = 2**64, "9" * 5000  # the second more digits than Python's int() takes from text
    async with httpx.AsyncClient(
        base_url=f"{target.url}/admin/api",
        headers={"Authorization": f"Bearer {target.admin_token}"},
        timeout=30,
    ) as api:
        assert_names(target, await api.get("/audit", params={"offset": big}), "offset")
        assert_names(target, await api.get("/audit", params={"offset": huge}), "offset")
        assert_names(target, await api.get("/runs/1/records", params={"after": big}), "after")
        assert_names(target, await api.get("/mappings/x", params={"version": big}), "version")
        # A text parameter made of digits is not a number to judge; an id path of thousands of digits is
        # still no row.
        assert (await api.get("/audit", params={"actor": big})).status_code == 200
        assert (await api.get(f"/consumers/{huge}")).status_code == 404
    admin = await sign_in(target.url, target.admin)
    try:
        answer = await admin.http.get("/admin/config", params={"version": big}, headers=BROWSER)
        assert answer.status_code == 400 and "<html" in answer.text and str(big) in answer.text
    finally:
        await admin.http.aclose()
    assert "Traceback" not in logged_since(target, start)
