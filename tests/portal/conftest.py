"""Portal fixtures: accounts made through the service layer, and signed-in HTTP sessions against the
real `unigate serve` process of tests/conftest.py (cookies, CSRF tokens and all)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from portal.services import accounts
from portal.services.principal import CLI, Principal
from tests.conftest import Gateway

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class Account:
    id: int
    username: str
    password: str
    role: str

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.username, self.role)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def make_account(role: str, *, prefix: str | None = None, password: str = PASSWORD) -> Account:
    username = unique(prefix or role)
    row = await accounts.create_account(CLI, username, password, role=role)
    return Account(int(row["id"]), username, password, role)


class Session:
    """A browser-like client: the session cookie after sign-in and the CSRF token of the last page."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        if match := _CSRF.search(response.text):
            self.csrf = match.group(1)
        return response

    async def form(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        body = {**(data or {}), **({"_csrf_token": self.csrf} if csrf else {})}
        response = await self.http.post(path, data=body)
        if match := _CSRF.search(response.text):
            self.csrf = match.group(1)
        return response

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A JSON API call with the session cookie, sending the CSRF token as a header like htmx does."""
        headers = {"x-csrftoken": self.csrf, **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)


async def sign_in(url: str, account: Account) -> Session:
    session = Session(httpx.AsyncClient(base_url=url, timeout=30, follow_redirects=False))
    await session.get("/portal/login")
    answer = await session.form("/portal/login", {"username": account.username, "password": account.password})
    assert answer.status_code == 303, answer.text
    return session


@pytest.fixture(scope="session")
async def admin(gateway: Gateway) -> Account:
    return await make_account("admin")


@pytest.fixture(scope="session")
async def admin_token(admin: Account) -> str:
    return (await accounts.create_token(admin.principal, "tests"))[1]


@pytest.fixture
async def admin_api(gateway: Gateway, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{gateway.url}/admin/api", headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
async def admin_session(gateway: Gateway, admin: Account) -> AsyncIterator[Session]:
    session = await sign_in(gateway.url, admin)
    try:
        yield session
    finally:
        await session.http.aclose()


@pytest.fixture
async def developer(gateway: Gateway) -> Account:
    return await make_account("developer", prefix="dev")


@pytest.fixture
async def dev_session(gateway: Gateway, developer: Account) -> AsyncIterator[Session]:
    session = await sign_in(gateway.url, developer)
    try:
        yield session
    finally:
        await session.http.aclose()


@pytest.fixture
async def signed_in(gateway: Gateway) -> AsyncIterator[Callable[[Account], Awaitable[Session]]]:
    """Sign further accounts in; their clients are closed after the test."""
    opened: list[Session] = []

    async def open_session(account: Account) -> Session:
        session = await sign_in(gateway.url, account)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        await session.http.aclose()
