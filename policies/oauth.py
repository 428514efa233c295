"""OAuth2 client credentials: authlib's AuthorizationServer issues short-lived JWTs signed with joserfc.

Keys are asymmetric (RS256) and named by `kid`. Every published key (JWKS) is accepted; the newest
one whose `activates_at` has passed signs. A rotation publishes the new key first and signs with it
only once every node has had time to learn it, and keeps the old key published until the tokens it
signed have expired: no token is ever refused because of a rotation. Clients, keys and scopes come
from the config snapshot, so issuing and verifying a token never touches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    DecodeError,
    ExpiredTokenError,
    JoseError,
    MissingKeyError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet, RSAKey

from gateway.errors import (
    InvalidClient,
    InvalidScope,
    OAuthError,
    Unauthorized,
    UnauthorizedClient,
    UnigateError,
    UnsupportedGrantType,
)
from gateway.store.snapshot import OAuthClientEntry, SigningKeyEntry, Snapshot
from policies.chain import APIS

ALGORITHM = "RS256"
KEY_BITS = 2048
# `pii:read` lets a caller see unmasked receiver data (policies/pii.py).
SCOPES: frozenset[str] = frozenset([*(f"{api}:{op}" for api in APIS for op in ("read", "write")), "pii:read"])
CLOCK_LEEWAY_SECONDS = 30  # nodes' clocks differ a little
TOKEN_CACHE_SIZE = 10_000
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def hash_secret(secret: str) -> str:
    """Client secrets are 256 random bits, so a plain SHA-256 is as safe to keep as an API key's."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_signing_key() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(kid, private JWK, public JWK) of a fresh RSA key pair."""
    kid = uuid.uuid4().hex[:16]
    key = RSAKey.generate_key(KEY_BITS, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True)
    return kid, key.as_dict(private=True), key.as_dict(private=False)


def signing_key(snapshot: Snapshot, now: datetime) -> SigningKeyEntry | None:
    """The newest published key already active that this node can open: the one that signs now."""
    active = [key for key in snapshot.signing_keys if key.activates_at <= now and key.private_jwk is not None]
    return active[-1] if active else None


def jwks(snapshot: Snapshot) -> dict[str, Any]:
    """Every key a token may be signed with: the active one, the next one and those still verifying."""
    return {"keys": [key.public_jwk for key in snapshot.signing_keys]}


class _Client(ClientMixin):  # type: ignore[misc]
    """authlib's view of one OAuth client from the snapshot."""

    def __init__(self, entry: OAuthClientEntry) -> None:
        self.entry = entry

    def get_client_id(self) -> str:
        return self.entry.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # No scope, or only spaces: every scope of the client. Each scope once, in the order asked.
        requested = scope_to_list(scope) if scope and scope.strip() else sorted(self.entry.scopes)
        return " ".join(item for item in dict.fromkeys(requested) if item in self.entry.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        given = hash_secret(client_secret)
        if hmac.compare_digest(given, self.entry.secret_hash):
            return True
        previous, until = self.entry.previous_secret_hash, self.entry.previous_expires_at
        return bool(previous and until and until > datetime.now(UTC) and hmac.compare_digest(given, previous))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = set(scope_to_list(self.request.payload.scope) or [])
        unknown = sorted(requested - SCOPES)
        if unknown:
            # authlib's own refusal names neither the scope nor the rule (space-separated, RFC 6749 3.3).
            raise InvalidScopeError(
                f"unknown scope {', '.join(map(repr, unknown))}: scopes are separated by spaces; "
                f"known: {', '.join(sorted(SCOPES))}"
            )
        if not requested <= self.request.client.entry.scopes:
            extra = ", ".join(sorted(requested - self.request.client.entry.scopes))
            raise InvalidScopeError(f"the client may not request: {extra}")


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: Mapping[str, str]) -> None:
        self._data = dict(form)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {key: [value] for key, value in self._data.items()}


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: Mapping[str, str], form: Mapping[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _Payload(form)
        self._form = dict(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form


_ERRORS: dict[str, type[OAuthError]] = {
    "invalid_client": InvalidClient,
    "invalid_scope": InvalidScope,
    "unsupported_grant_type": UnsupportedGrantType,
    "unauthorized_client": UnauthorizedClient,
}


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's AuthorizationServer over the config snapshot: client credentials in, a signed JWT out."""

    def __init__(self, snapshot: Callable[[], Snapshot], *, issuer: str, ttl_seconds: int) -> None:
        super().__init__(scopes_supported=sorted(SCOPES))
        self.snapshot = snapshot
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.register_grant(_ClientCredentials)
        self.register_token_generator("client_credentials", self._token)

    def query_client(self, client_id: str) -> _Client | None:
        entry = self.snapshot().oauth_clients.get(client_id)
        # A suspended application, or one whose owner account is disabled, gets no token.
        if entry is None or not entry.consumer.usable:
            return None
        return _Client(entry)

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # built from Litestar's request by `token_response`

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to keep: the token is self-contained and checked against the snapshot on use."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's hook for signals; no one listens."""

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, dict[str, str]]:
        return status, body, dict(headers)

    def _token(self, *, client: _Client, scope: str | None, **_: Any) -> dict[str, Any]:
        moment = time.time()
        now = int(moment)  # JWT times are whole seconds
        # The key is chosen at the true instant: truncated to the second, a key made a moment ago (the
        # first one, made with the first client) would not be active yet and nothing could sign.
        key = signing_key(self.snapshot(), datetime.fromtimestamp(moment, UTC))
        if key is None or key.private_jwk is None:  # every key retired by hand: only an admin can fix it
            raise UnigateError(
                "the gateway has no signing key; an admin must run `unigate signing-keys rotate`"
            )
        granted = client.get_allowed_scope(scope)
        claims = {
            "iss": self.issuer,
            "sub": client.entry.client_id,
            "client_id": client.entry.client_id,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "scope": granted,
        }
        token = jwt.encode({"alg": key.algorithm, "kid": key.kid}, claims, RSAKey.import_key(key.private_jwk))
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.ttl_seconds,
            "scope": granted,
        }

    def token_response(
        self, method: str, uri: str, headers: Mapping[str, str], form: Mapping[str, str]
    ) -> dict[str, Any]:
        """The token for a POST to /oauth/token, or the OAuthError to answer with."""
        try:
            request = _Request(method, uri, headers, form)
        except InsecureTransportError:
            raise OAuthError("the token endpoint must be called over HTTPS") from None
        status, body, _ = self.create_token_response(request)
        if status == 200:
            return body  # type: ignore[no-any-return]
        error = _ERRORS.get(body.get("error"), OAuthError)
        if error is UnsupportedGrantType and not form.get("grant_type"):
            error = OAuthError  # RFC 6749 5.2: a request missing a required parameter is invalid_request
        problem = error(_description(body, form))
        if status != problem.status and error is OAuthError:
            problem.status = status  # type: ignore[misc]
        raise problem


def _description(body: Mapping[str, Any], form: Mapping[str, str]) -> str:
    """What to tell the client: authlib's words name Python lists, or only repeat the error code."""
    code = str(body.get("error") or "")
    if code == "invalid_client":
        return (
            "the client id or secret is wrong, or the client is revoked, its application suspended or the "
            "application's owner account disabled; "
            "send them with HTTP Basic, or as client_id and client_secret in the form body (never in the URL)"
        )
    if code == "unsupported_grant_type":
        grant = form.get("grant_type")
        if not grant:
            return (
                "grant_type is missing: send grant_type=client_credentials "
                "in an application/x-www-form-urlencoded body"
            )
        return f"grant_type {grant!r} is not supported: this gateway issues client_credentials tokens only"
    return str(body.get("error_description") or code or "the token request was refused")


@dataclass(frozen=True, slots=True)
class Bearer:
    """A verified token: its client (live, from the snapshot) and the scopes it grants."""

    client: OAuthClientEntry
    scopes: frozenset[str]
    expires: int


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class TokenVerifier:
    """Checks a bearer JWT: signature by a published key, issuer, expiry, and a client still valid."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._snapshot: Snapshot | None = None
        self._keys = KeySet([])
        # A token's signature is checked once per config snapshot; later calls only re-check its expiry.
        self._verified: dict[str, tuple[str, frozenset[str], int]] = {}

    def verify(self, token: str, snapshot: Snapshot, now: float) -> Bearer:
        if snapshot is not self._snapshot:
            self._snapshot, self._verified = snapshot, {}
            self._keys = KeySet([RSAKey.import_key(key.public_jwk) for key in snapshot.signing_keys])
        known = self._verified.get(token)
        if known is None:
            known = self._decode(token, now)
            if len(self._verified) >= TOKEN_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = known
        client_id, scopes, expires = known
        if expires + CLOCK_LEEWAY_SECONDS <= now:
            raise Unauthorized(
                "the access token has expired: request a new one from /oauth/token", invalid_token=True
            )
        client = snapshot.oauth_clients.get(client_id)
        if client is None:
            raise Unauthorized("the OAuth client of this access token has been revoked", invalid_token=True)
        # Scopes taken from the client since the token was issued are gone at once.
        return Bearer(client, scopes & client.scopes, expires)

    def _decode(self, token: str, now: float) -> tuple[str, frozenset[str], int]:
        try:
            decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                now=int(now),
                leeway=CLOCK_LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                # Our tokens carry no audience; one that names an audience must name us (RFC 7519 4.1.3).
                aud={"essential": False, "values": [self.issuer]},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
        except ExpiredTokenError:
            raise Unauthorized(
                "the access token has expired: request a new one from /oauth/token", invalid_token=True
            ) from None
        except (JoseError, ValueError) as exc:
            raise Unauthorized(
                f"the access token is not valid: {_why_invalid(exc)}", invalid_token=True
            ) from None
        claims = decoded.claims
        return str(claims["sub"]), frozenset(str(claims.get("scope") or "").split()), int(claims["exp"])


def _why_invalid(error: Exception) -> str:
    """Why a token was refused, in words a client developer can act on (not the library's class names)."""
    if isinstance(error, BadSignatureError | MissingKeyError):
        return "it is not signed by a key of this gateway's /.well-known/jwks.json"
    if isinstance(error, UnsupportedAlgorithmError):
        return f"it is not signed with {ALGORITHM}"
    if isinstance(error, ClaimError):
        return "its claims (iss, sub, exp, aud) are not those of a token from this gateway's /oauth/token"
    if isinstance(error, DecodeError | ValueError):
        return "it is not a JWT (three base64url parts separated by dots)"
    return "request a new one from /oauth/token"
