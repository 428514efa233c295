"""Identify the caller from an API key (Authorization: Bearer or X-API-Key) or an OAuth2 JWT (Bearer)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from gateway.errors import Unauthorized
from gateway.store.snapshot import ConsumerEntry, KeyEntry, Snapshot
from policies.chain import Context, Gate
from policies.oauth import TokenVerifier, looks_like_jwt


def key_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    if api_key:
        return api_key.strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def authenticate(key: str | None, snapshot: Snapshot, now: datetime | None = None) -> KeyEntry:
    """The key's entry, or Unauthorized saying what is wrong (never echoing the key)."""
    if not key:
        raise Unauthorized("an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    entry = snapshot.keys.get(hashlib.sha256(key.encode()).hexdigest())
    if entry is None:
        raise Unauthorized("the API key is unknown or has been revoked", invalid_token=True)
    if entry.expires_at is not None and entry.expires_at <= (now or datetime.now(UTC)):
        raise Unauthorized("the API key has expired", invalid_token=True)
    refuse_unusable(entry.consumer, "key")
    return entry


def refuse_unusable(consumer: ConsumerEntry, credential: str) -> None:
    """Unauthorized when the application may not call: suspended, or its owner account disabled (a
    developer offboarded or blocked loses every app's access at once, the apps' own state kept)."""
    if not consumer.active:
        raise Unauthorized(f"the application this {credential} belongs to is suspended", invalid_token=True)
    if consumer.owner_disabled:
        raise Unauthorized(
            f"the application this {credential} belongs to cannot be used: its owner account is disabled",
            invalid_token=True,
        )


class KeyUsage:
    """Last-use times of keys, kept in memory and flushed in batches off the hot path."""

    def __init__(self) -> None:
        self.pending: dict[int, datetime] = {}

    def record(self, key_id: int) -> None:
        self.pending[key_id] = datetime.now(UTC)

    def take(self) -> dict[int, datetime]:
        taken, self.pending = self.pending, {}
        return taken


class Authenticate(Gate):
    """Policy: who is calling. Everything after it may rely on `ctx.consumer`."""

    def __init__(self, usage: KeyUsage, tokens: TokenVerifier) -> None:
        self.usage = usage
        self.tokens = tokens

    def before(self, ctx: Context) -> None:
        key = key_from_headers(ctx.headers.get("authorization"), ctx.headers.get("x-api-key"))
        if key and looks_like_jwt(key) and not ctx.headers.get("x-api-key"):
            bearer = self.tokens.verify(key, ctx.snapshot, time.time())
            refuse_unusable(bearer.client.consumer, "token")
            ctx.oauth_client, ctx.consumer, ctx.granted_scopes = (
                bearer.client,
                bearer.client.consumer,
                bearer.scopes,
            )
            return
        entry = authenticate(key, ctx.snapshot)
        self.usage.record(entry.id)
        ctx.key, ctx.consumer = entry, entry.consumer
