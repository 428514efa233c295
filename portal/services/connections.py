"""Connections (API producers): credentials are write-only and sealed, every change is audited, and
"test" makes a real signed call through the connector and reports the vendor's answer."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.connectors.registry import SYSTEMS
from gateway.demo import test_connection as signed_test_call
from gateway.errors import InvalidParameter, NotFound
from gateway.settings import Settings
from gateway.store import manage
from gateway.store.crypto import Vault
from gateway.store.engine import atomic
from gateway.store.snapshot import may_use
from gateway.store.tables import Connection
from portal.services import audit
from portal.services.principal import Principal

LIMIT_FIELDS = ("qps", "concurrency", "timeout_seconds", "retries")


def systems() -> list[str]:
    return sorted(SYSTEMS)


async def list_connections(vault: Vault) -> list[dict[str, Any]]:
    """Connections with the names of their credential fields, never the values."""
    rows = await Connection.select().order_by(Connection.name)
    return [_public(row, vault) for row in rows]


def _public(row: dict[str, Any], vault: Vault) -> dict[str, Any]:
    try:
        fields = sorted(vault.open(row["credentials"]))
    except ValueError:
        fields = []  # sealed with another secret key: shown as unset, so it is obvious to re-enter
    options = row["options"]
    if isinstance(options, str):
        options = msgspec.json.decode(options)
    return {
        "id": row["id"],
        "name": row["name"],
        "system": row["system"],
        "base_url": row["base_url"],
        "credential_fields": fields,
        "options": options,
        "open": bool(row["open"]),
        "updated_at": row["updated_at"],
    }


async def usable_by(me: Principal, app_id: int | None = None) -> list[dict[str, Any]]:
    """The connections a developer may choose as an app's default: the open ones and those granted to the
    app (`app_id`; none for an app not made yet), by name and system only: how a backend is reached (its
    address, options, id) is the admins' business. An admin may choose any, granting it by doing so."""
    rows = await manage.list_connections()
    if me.is_admin:
        return rows
    granted = set(await manage.granted_connections(app_id)) if app_id is not None else set()
    return [
        {"name": row["name"], "system": row["system"]}
        for row in rows
        if may_use(granted, row["name"], row["open"])
    ]


async def exists(name: str) -> bool:
    return bool(name) and bool(await Connection.exists().where(Connection.name == name))


async def get_connection(vault: Vault, name: str) -> dict[str, Any]:
    row = await Connection.select().where(Connection.name == name).first()
    if row is None:
        raise NotFound(f"no connection named {name!r}")
    return _public(row, vault)


@atomic  # the change commits with its audit record, and credentials merge with what is stored then
async def save_connection(
    me: Principal,
    vault: Vault,
    *,
    name: str,
    system: str,
    base_url: str,
    credentials: dict[str, str],
    options: dict[str, Any] | None = None,
    open: bool | None = None,
) -> dict[str, Any]:
    """Create or update. A credential left empty keeps its stored value, so the form never shows secrets.
    `open` (every application may use it) is kept as it is when None."""
    me.require_admin()
    if not manage.NAME.match(name):
        raise InvalidParameter(
            "name",
            "a connection name is 2-100 lowercase letters, digits or . _ -, starting with one of those",
        )
    if system not in SYSTEMS:
        raise InvalidParameter("system", f"unknown system {system!r}; known: {', '.join(sorted(SYSTEMS))}")
    existing = await Connection.select().where(Connection.name == name).first()
    before = _public(existing, vault) if existing else None
    merged: dict[str, Any] = {}
    if existing is not None:
        try:
            merged = vault.open(existing["credentials"])
        except ValueError:
            merged = {}
    given = {key: value for key, value in credentials.items() if value}
    manage.check_credentials_follow(
        existing["base_url"] if existing else None, base_url, merged.keys() - given.keys()
    )
    merged.update(given)
    await manage.put_connection(
        vault,
        name=name,
        system=system,
        base_url=base_url,
        credentials=merged,
        options=options or {},
        open=open,
    )
    after = await get_connection(vault, name)
    await audit.record(
        me,
        "connection.update" if before else "connection.create",
        name,
        before=before and {**before, "credentials": dict.fromkeys(before["credential_fields"])},
        after={
            **after,
            # Which secrets were replaced, not what they are.
            "credentials": dict.fromkeys(after["credential_fields"]),
            "credentials_changed": sorted(key for key, value in credentials.items() if value),
        },
    )
    return after


def required_credentials(system: str) -> list[str]:
    """The credential fields a system's connector asks for, found by asking the connector."""
    fields: list[str] = []
    for _ in range(20):
        try:
            manage.check_connection("probe", system, "http://probe", dict.fromkeys(fields, "x"))
            return fields
        except InvalidParameter as error:
            if not error.field.startswith("credentials."):
                return fields
            fields.append(error.field.removeprefix("credentials."))
    return fields


@atomic
async def delete_connection(me: Principal, vault: Vault, name: str) -> None:
    me.require_admin()
    before = await get_connection(vault, name)
    await manage.delete_connection(name)
    await audit.record(me, "connection.delete", name, before={**before, "credentials": None})


async def test_connection(settings: Settings, name: str) -> dict[str, Any]:
    """A real signed call; {"ok": bool, "vendor": {...}} or {"ok": False, "error": ...}."""
    if not await Connection.exists().where(Connection.name == name):
        raise NotFound(f"no connection named {name!r}")
    return await signed_test_call(settings, name)


def parse_limits(values: dict[str, str], extra_json: str = "") -> dict[str, Any]:
    """Backend limits from form fields plus other options as JSON, as the connection's options."""
    options: dict[str, Any] = {}
    if extra_json.strip():
        try:
            decoded = msgspec.json.decode(extra_json)
        except msgspec.DecodeError:
            raise InvalidParameter("options", "other options must be a JSON object") from None
        if not isinstance(decoded, dict):
            raise InvalidParameter("options", "other options must be a JSON object")
        options.update(decoded)
    for field in LIMIT_FIELDS:
        raw = (values.get(field) or "").strip()
        if not raw:
            continue
        try:
            options[field] = int(raw) if field in ("concurrency", "retries") else float(raw)
        except ValueError:
            raise InvalidParameter(field, f"{field} must be a number") from None
    return options
