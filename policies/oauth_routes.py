"""HTTP for OAuth2: `POST /oauth/token` (client credentials) and `GET /.well-known/jwks.json`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler

from gateway.store.snapshot import Snapshot
from policies.ipfilter import Proxies
from policies.oauth import SCOPES, TokenServer, jwks

TOKEN_DESCRIPTION = f"""Exchange client credentials for a short-lived JWT (RFC 6749 §4.4).

Send `application/x-www-form-urlencoded` with `grant_type=client_credentials` and optionally
`scope` (space-separated; default: every scope of the client), authenticating either with HTTP
Basic (`client_secret_basic`) or with `client_id` and `client_secret` in the form
(`client_secret_post`). Use the `access_token` as `Authorization: Bearer …` on `/v1`.
Scopes: {", ".join(f"`{s}`" for s in sorted(SCOPES))}. Refusals are problem+json whose `code`
is the OAuth2 error (`invalid_client`, `invalid_scope`, `unsupported_grant_type`, …), also given
as RFC 6749's `error` and `error_description`."""


def oauth_routes(
    server: TokenServer, proxies: Proxies, snapshot: Callable[[], Snapshot]
) -> list[BaseRouteHandler]:
    @post(
        "/oauth/token",
        tags=["oauth"],
        summary="Get an access token",
        description=TOKEN_DESCRIPTION,
        status_code=200,
        security=[],
    )
    async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
        form = await request.form()
        body = server.token_response(
            request.method, _public_url(request, proxies), request.headers, dict(form.items())
        )
        return Response(
            msgspec.json.encode(body),
            media_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    @get(
        "/.well-known/jwks.json",
        tags=["oauth"],
        summary="Public keys that sign access tokens",
        description="Every key a valid token may be signed with, by `kid`; refetch on an unknown `kid`.",
        security=[],
    )
    async def jwks_document() -> Response[bytes]:
        return Response(
            msgspec.json.encode(jwks(snapshot())),
            media_type="application/json",
            headers={"Cache-Control": "public, max-age=60"},
        )

    return [token, jwks_document]


def _public_url(request: Request[Any, Any, Any], proxies: Proxies) -> str:
    """The URL the client used: a trusted proxy that terminated TLS says so in X-Forwarded-Proto."""
    url = str(request.url)
    forwarded = request.headers.get("x-forwarded-proto", "")
    peer = proxies.client(request.client.host if request.client else None, None)
    if forwarded == "https" and url.startswith("http://") and proxies.trusts(peer):
        return "https://" + url.removeprefix("http://")
    return url
