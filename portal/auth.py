"""Who is signed in, and the guards every portal route uses.

A request is authenticated by exactly one of: an admin API token (`Authorization: Bearer uga_…`),
or the session cookie set at sign-in. Guards for any route handler or router:

    @get("/things", guards=[admin_only])          # admins (session or token)
    @get("/mine", guards=[developer_or_admin])    # any signed-in, active account

and a handler that needs the caller declares `me: Principal` (provided by the portal routers).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import Forbidden, Unauthorized
from policies.chain import ACTOR
from portal.services import accounts
from portal.services.principal import Principal
from portal.sessions import STORE, bearer_token, rotate_session

_PRINCIPAL = "principal"


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller, resolved once per request; None when nobody is signed in."""
    state = connection.scope.setdefault("state", {})
    if _PRINCIPAL in state:
        return state[_PRINCIPAL]  # type: ignore[no-any-return]
    principal: Principal | None = None
    if (token := bearer_token(connection.scope)) is not None:
        principal = await accounts.token_principal(token)
        if principal is None:
            raise Unauthorized("the admin token is unknown or revoked, or its account is not an active admin")
    else:
        session = connection.scope.get("session") or {}
        if isinstance(session, dict) and "account" in session:
            principal = await accounts.session_principal(
                int(session["account"]), int(session.get("epoch", 0))
            )
    state[_PRINCIPAL] = principal
    if principal is not None:
        state[ACTOR] = principal.username  # named in the request's access line
    return principal


async def developer_or_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if await principal_of(connection) is None:
        raise Unauthorized("sign in first")


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal = await principal_of(connection)
    if principal is None:
        raise Unauthorized("sign in as an admin, or send an admin token")
    if not principal.is_admin:
        raise Forbidden("this needs an admin account")


async def provide_me(request: Request[Any, Any, Any]) -> Principal:
    """Dependency `me`: the signed-in principal (a guard has already refused anonymous callers)."""
    principal = await principal_of(request)
    if principal is None:
        raise Unauthorized("sign in first")
    return principal


async def sign_in(request: Request[Any, Any, Any], principal: Principal) -> None:
    await rotate_session(request)
    await STORE.delete_expired()  # sign-ins are rare enough to sweep old sessions on
    epoch = await accounts.session_epoch(principal.account_id or 0)
    request.set_session({"account": principal.account_id, "epoch": epoch})
    state = request.scope.setdefault("state", {})
    state[_PRINCIPAL], state[ACTOR] = principal, principal.username


def sign_out(request: Request[Any, Any, Any]) -> None:
    request.clear_session()
    request.scope.setdefault("state", {})[_PRINCIPAL] = None
