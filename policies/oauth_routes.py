"""HTTP for OAuth2: `POST /oauth/token` (client credentials) and `GET /.well-known/jwks.json`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from gateway.errors import OAuthError
from gateway.store.snapshot import Snapshot
from policies.ipfilter import Proxies, address_of
from policies.oauth import SCOPES, TokenServer, jwks

TOKEN_DESCRIPTION = f"""Exchange client credentials for a short-lived JWT (RFC 6749 §4.4).

Send `application/x-www-form-urlencoded` with `grant_type=client_credentials` and optionally
`scope` (space-separated; default: every scope of the client), authenticating either with HTTP
Basic (`client_secret_basic`) or with `client_id` and `client_secret` in the form
(`client_secret_post`). Use the `access_token` as `Authorization: Bearer …` on `/v1`.
Scopes: {", ".join(f"`{s}`" for s in sorted(SCOPES))}. Refusals are problem+json whose `code`
is the OAuth2 error (`invalid_client`, `invalid_scope`, `unsupported_grant_type`, …), also given
as RFC 6749's `error` and `error_description`."""


class TokenAnswer(msgspec.Struct, kw_only=True):
    """An access token (RFC 6749 5.1)."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int  # seconds
    scope: str  # the scopes granted, separated by spaces


class TokenProblem(msgspec.Struct, kw_only=True):
    """A refused token request: RFC 9457 problem+json with RFC 6749 5.2's `error` and `error_description`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    error: str
    error_description: str
    request_id: str | None = None


def _text(description: str, **extra: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **extra)


@dataclass
class TokenOperation(Operation):
    """The token endpoint reads its form itself (authlib checks it), so its body is described here."""

    def __post_init__(self) -> None:
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["grant_type"],
            properties={
                "grant_type": _text("Only `client_credentials`", enum=["client_credentials"]),
                "scope": _text("Scopes wanted, separated by spaces (default: every scope of the client)"),
                "client_id": _text("With `client_secret`, instead of HTTP Basic (client_secret_post)"),
                "client_secret": _text("Never in the URL"),
            },
        )
        self.request_body = RequestBody(
            content={"application/x-www-form-urlencoded": OpenAPIMediaType(schema=form)}, required=True
        )


def _refusals(description: str, codes: tuple[str, ...]) -> ResponseSpec:
    return ResponseSpec(
        data_container=TokenProblem,
        description=f"{description}: `code` and `error` are one of {', '.join(f'`{c}`' for c in codes)}",
        media_type="application/problem+json",
    )


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
        responses={
            200: ResponseSpec(data_container=TokenAnswer, description="The access token"),
            400: _refusals(
                "The request is not one this endpoint grants",
                ("invalid_request", "invalid_scope", "unsupported_grant_type", "unauthorized_client"),
            ),
            401: _refusals("The client id or secret is wrong, or the client is revoked", ("invalid_client",)),
        },
        operation_class=TokenOperation,
    )
    async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
        form = await request.form()
        url = _public_url(request, proxies)
        if url.startswith("http://") and not _on_this_machine(request):
            # authlib lets plain HTTP through to a loopback host, and the Host header names it: a caller
            # elsewhere could send `Host: localhost`. Where the caller is decides, not what it says.
            raise OAuthError("the token endpoint must be called over HTTPS")
        body = server.token_response(request.method, url, request.headers, dict(form.items()))
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


def _on_this_machine(request: Request[Any, Any, Any]) -> bool:
    """The caller is on this machine: a loopback peer, and no loopback proxy forwarding for anyone else."""
    hops = [request.client.host if request.client else ""]
    hops += [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    # A hop that is not an address (a name, `unknown`) is not known to be here.
    return all((address := address_of(hop)) is not None and address.is_loopback for hop in hops)


def _public_url(request: Request[Any, Any, Any], proxies: Proxies) -> str:
    """The URL the client used: a trusted proxy that terminated TLS says so in X-Forwarded-Proto."""
    url = str(request.url)
    peer = request.client.host if request.client else None
    if url.startswith("http://") and proxies.forwarded_https(peer, request.headers.get("x-forwarded-proto")):
        return "https://" + url.removeprefix("http://")
    return url
