"""Portal sessions and CSRF: Litestar's server-side session middleware over a database store, and
Litestar's CSRF middleware, skipped only for requests that carry a bearer token instead of cookies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar, Request
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, Receive, Scope, ScopeSession, Send
from litestar.utils.scope.state import ScopeState

from gateway.settings import Settings
from gateway.store.accounts import PortalSession

SESSION_COOKIE = "unigate_session"
CSRF_COOKIE = "unigate_csrf"
# With UNIGATE_COOKIE_SECURE both names carry this prefix: a browser then takes such a cookie only over
# HTTPS from this very host, for every path, so a sibling subdomain cannot plant one (a CSRF token it
# knows, beside the victim's session; a session it made). Without HTTPS the prefix is refused by browsers.
SECURE_PREFIX = "__Host-"
CSRF_HEADER = "x-csrftoken"
SESSION_DAYS = 7
_ROTATED = "unigate_session_rotated"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DatabaseStore(Store):
    """Session data in the database, so every gateway node sees every session; rows are keyed by the
    hash of the cookie, so reading the table does not let anyone sign in."""

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        data = value.decode() if isinstance(value, bytes) else value
        expires_at = _expiry(expires_in)
        updated = (
            await PortalSession.update({PortalSession.data: data, PortalSession.expires_at: expires_at})
            .where(PortalSession.key_hash == _hash(key))
            .returning(PortalSession.id)
        )
        if not updated:
            await PortalSession.insert(PortalSession(key_hash=_hash(key), data=data, expires_at=expires_at))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        row = await PortalSession.select().where(PortalSession.key_hash == _hash(key)).first()
        if row is None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            await self.delete(key)
            return None
        if renew_for is not None:
            await PortalSession.update({PortalSession.expires_at: _expiry(renew_for)}).where(
                PortalSession.id == row["id"]
            )
        return str(row["data"]).encode()

    async def delete(self, key: str) -> None:
        await PortalSession.delete().where(PortalSession.key_hash == _hash(key))

    async def delete_all(self) -> None:
        await PortalSession.delete(force=True)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = (
            await PortalSession.select(PortalSession.expires_at)
            .where(PortalSession.key_hash == _hash(key))
            .first()
        )
        if row is None or row["expires_at"] is None:
            return None
        return int((row["expires_at"] - datetime.now(UTC)).total_seconds())

    async def delete_expired(self) -> None:
        await PortalSession.delete().where(PortalSession.expires_at < datetime.now(UTC))


def _expiry(expires_in: int | timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
    return datetime.now(UTC) + timedelta(seconds=seconds)


STORE = DatabaseStore()


class _Backend(ServerSideSessionBackend):
    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        if not scope_session and not connection.cookies.get(self.config.key):
            return  # an anonymous visit with nothing to keep: no row, no cookie
        await super().store_in_message(scope_session or Empty, message, connection)

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        # After sign-in the session gets a fresh id, so an id planted before sign-in is worth nothing.
        if connection.scope.get("state", {}).get(_ROTATED):
            return str(connection.get_session_id())
        return super().get_session_id(connection)


@dataclass
class _SessionConfig(ServerSideSessionConfig):
    _backend_class = _Backend

    def get_store_from_app(self, app: Litestar) -> Store:
        return STORE


def cookie_name(name: str, settings: Settings) -> str:
    """The name a portal cookie is sent under (SECURE_PREFIX)."""
    return SECURE_PREFIX + name if settings.cookie_secure else name


async def rotate_session(request: Request[Any, Any, Any]) -> None:
    """Drop the current session id and continue under a new one (call on sign-in)."""
    if old := request.cookies.get(cookie_name(SESSION_COOKIE, request.app.state.settings)):
        await STORE.delete(old)
    ScopeState.from_scope(request.scope).session_id = secrets.token_hex(32)
    request.scope.setdefault("state", {})[_ROTATED] = True


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class PortalCSRF(CSRFMiddleware):
    """CSRF on every cookie-authenticated request; a bearer token cannot be sent by another site's form."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and bearer_token(scope) is not None:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def middleware(settings: Settings) -> list[DefineMiddleware]:
    """Session, then CSRF: the middleware every portal router carries."""
    session = _SessionConfig(
        key=cookie_name(SESSION_COOKIE, settings),
        max_age=SESSION_DAYS * 86400,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
        renew_on_access=False,
    )
    csrf = CSRFConfig(
        # Derived, so the CSRF secret is not the Fernet key itself but changes with it.
        secret=hmac.new(settings.secret_key.encode(), b"unigate-csrf", hashlib.sha256).hexdigest(),
        cookie_name=cookie_name(CSRF_COOKIE, settings),
        header_name=CSRF_HEADER,
        cookie_secure=settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
    )
    return [session.middleware, DefineMiddleware(PortalCSRF, config=csrf)]
