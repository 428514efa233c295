"""The audit log: every change made through the management plane, with secrets redacted."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from gateway.store.accounts import AuditEvent
from portal.services.principal import Principal

REDACTED = "***"
# Field names whose values are secrets wherever they appear (credentials, passwords, tokens).
_SECRET = re.compile(
    r"(secret|password|passwd|_hash$|^token$|^credentials$|^appkey$|^key$|^sid$|private)", re.IGNORECASE
)


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named field's value replaced by `***`."""
    if isinstance(value, dict):
        return {
            key: (_mask(item) if _SECRET.search(str(key)) else redact(item)) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _mask(value: Any) -> Any:
    # Keep the shape (which credential fields exist) but never a value.
    if isinstance(value, dict):
        return {key: REDACTED for key in value}
    return None if value is None else REDACTED


async def record(
    actor: Principal, action: str, target: str, *, before: Any = None, after: Any = None
) -> None:
    await AuditEvent.insert(
        AuditEvent(
            actor=actor.username,
            action=action,
            target=target,
            before=redact(before),
            after=redact(after),
        )
    )


async def list_events(
    *, limit: int = 50, offset: int = 0, action: str | None = None, actor: str | None = None
) -> list[dict[str, Any]]:
    query = AuditEvent.select().order_by(AuditEvent.id, ascending=False).limit(limit).offset(offset)
    if action:
        query = query.where(AuditEvent.action.like(f"{action}%"))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    rows = await query
    return [_decoded(row) for row in rows]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for field in ("before", "after"):
        if isinstance(row[field], str):
            row[field] = msgspec.json.decode(row[field])
    return row
