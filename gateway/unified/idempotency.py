"""Idempotency-Key for writes: the first answer is stored and replayed; a different body is refused."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gateway.errors import Conflict, IdempotencyConflict, InvalidParameter
from gateway.store.tables import IdempotencyRecord

MAX_KEY_LENGTH = 200


class Outcome(msgspec.Struct, frozen=True):
    status: int
    body: Any
    replayed: bool


async def once(
    *, scope: str, key: str | None, request: Any, run: Callable[[], Awaitable[tuple[int, Any]]]
) -> Outcome:
    """Run `run` at most once per (scope, key); replay its answer for the same request."""
    if key is None:
        status, body = await run()
        return Outcome(status, body, False)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidParameter("Idempotency-Key", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    scope_key = f"{scope}:{key}"
    request_hash = hashlib.sha256(msgspec.json.encode(request, order="deterministic")).hexdigest()
    try:
        await IdempotencyRecord.insert(IdempotencyRecord(scope_key=scope_key, request_hash=request_hash))
    except Exception:  # the unique constraint: this key has been seen (engines raise different types)
        return await _replay(scope_key, request_hash)
    try:
        status, body = await run()
    except BaseException:
        # Nothing was accepted: free the key so the caller may retry.
        await IdempotencyRecord.delete().where(IdempotencyRecord.scope_key == scope_key)
        raise
    await IdempotencyRecord.update(
        {
            IdempotencyRecord.status_code: status,
            IdempotencyRecord.response_body: msgspec.json.encode(body).decode(),
        }
    ).where(IdempotencyRecord.scope_key == scope_key)
    return Outcome(status, body, False)


async def _replay(scope_key: str, request_hash: str) -> Outcome:
    row = await IdempotencyRecord.select().where(IdempotencyRecord.scope_key == scope_key).first()
    if row is None:  # freed by a failed first attempt between our insert and this read
        raise Conflict("a request with this Idempotency-Key just failed; retry it")
    if row["request_hash"] != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was used with a different request body; use a new key for a new request",
            field="Idempotency-Key",
        )
    if not row["status_code"]:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    return Outcome(row["status_code"], msgspec.json.decode(row["response_body"]), True)
