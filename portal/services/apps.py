"""Apps (consumers) and their API keys, as a developer manages their own and an admin manages all.

A developer only ever reaches apps whose owner they are: anything else is "not found", so the
existence of other people's apps is not revealed either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from gateway.errors import InvalidParameter, NotFound
from gateway.store import manage
from gateway.store.accounts import Account
from gateway.store.engine import atomic, hold_row
from gateway.store.snapshot import bump_version
from gateway.store.tables import ApiKey, Consumer
from portal.services import audit
from portal.services.principal import Principal

RESOURCES = manage.APIS
MAX_OVERLAP_HOURS = 24 * 30
MAX_OVERLAP = timedelta(hours=MAX_OVERLAP_HOURS)
APP_FIELDS = (
    Consumer.id,
    Consumer.name,
    Consumer.description,
    Consumer.default_connections,
    Consumer.connections,
    Consumer.active,
    Consumer.created_at,
    Consumer.owner.username.as_alias("owner"),
    # A disabled owner blocks the app's API access whatever its own state (gateway/store/snapshot.py).
    Consumer.owner.status.as_alias("owner_status"),
)


def _check_name(name: str) -> None:
    if not manage.NAME.match(name):
        raise InvalidParameter(
            "name", "an app name is 2-100 lowercase letters, digits or . _ -, starting with a letter or digit"
        )


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for column in ("default_connections", "connections"):
        if isinstance(row.get(column), str | bytes):
            row[column] = msgspec.json.decode(row[column])
    return row


async def list_apps(me: Principal, *, everyone: bool = False) -> list[dict[str, Any]]:
    """The caller's own apps; an admin asking for `everyone` sees all consumers."""
    query = Consumer.select(*APP_FIELDS).order_by(Consumer.name)
    if not (everyone and me.is_admin):
        query = query.where(Consumer.owner == me.account_id)
    return [_decoded(row) for row in await query]


async def get_app(me: Principal, app_id: int) -> dict[str, Any]:
    query = Consumer.select(*APP_FIELDS).where(Consumer.id == app_id)
    if not me.is_admin:
        query = query.where(Consumer.owner == me.account_id)
    row = await query.first()
    if row is None:
        raise NotFound(f"no app with id {app_id}")
    return _decoded(dict(row))


@atomic  # the app and its audit record commit together: no change goes unrecorded
async def create_app(
    me: Principal,
    name: str,
    *,
    description: str = "",
    default_connections: dict[str, str] | None = None,
    owner: str | None = None,
    connections: list[str] | None = None,
) -> dict[str, Any]:
    """A developer's app is theirs; an admin's belongs to `owner` (a username) or to nobody. A developer's
    defaults must be open connections (a new app is granted none); an admin's are granted by naming them,
    besides `connections`."""
    _check_name(name)
    if len(description) > 500:
        raise InvalidParameter("description", "the description has at most 500 characters")
    if connections and not me.is_admin:
        raise InvalidParameter("connections", "only an admin grants connections")
    owner_id = me.account_id
    if me.is_admin:
        owner_id = None
        if owner:
            row = await Account.select(Account.id).where(Account.username == owner).first()
            if row is None:
                raise InvalidParameter("owner", f"there is no account named {owner!r}")
            owner_id = int(row["id"])
    # create_consumer checks the defaults (a developer's among the connections a new app may use).
    app_id = await manage.create_consumer(
        name,
        default_connections or {},
        owner=owner_id,
        description=description,
        grants=connections or [],
        by_admin=me.is_admin,
    )
    app = await get_app(me, app_id)
    await audit.record(me, "app.create", name, after=app)
    return app


@atomic
async def update_app(
    me: Principal,
    app_id: int,
    *,
    description: str | None = None,
    default_connections: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Change an app's description or defaults (None: kept). A developer (their own app only) chooses among
    the open connections and those granted to it, and grants nothing; an admin grants a default by naming
    it anew."""
    await hold_row(Consumer, app_id)  # `before` stays what the change is computed from
    before = await get_app(me, app_id)
    values: dict[Any, Any] = {}
    if description is not None:
        if len(description) > 500:
            raise InvalidParameter("description", "the description has at most 500 characters")
        values[Consumer.description] = description
    if default_connections is not None:
        # A developer chooses among the open connections and those granted; an admin grants by naming.
        granted = before["connections"]
        defaults = await manage.check_defaults(default_connections, usable=None if me.is_admin else granted)
        values[Consumer.default_connections] = defaults
        if me.is_admin:
            # Only a default the admin names anew is granted by naming it: one left as it was may have
            # been revoked since, and an edit of anything else must not grant it back.
            values[Consumer.connections] = manage.granting(granted, defaults, before["default_connections"])
    if values:
        await Consumer.update(values).where(Consumer.id == app_id)
        await bump_version()
    after = await get_app(me, app_id)
    await audit.record(me, "app.update", before["name"], before=before, after=after)
    return after


@atomic
async def change_grants(
    me: Principal,
    app_id: int,
    *,
    grant: Sequence[str] = (),
    revoke: Sequence[str] = (),
    replace: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Admin: the connections an app may use besides the open ones (`*`: all). Every node applies it at
    its next snapshot; a default naming a revoked connection is refused at call time (403)."""
    me.require_admin()
    await hold_row(Consumer, app_id)
    before = await get_app(me, app_id)
    await manage.change_grants(
        app_id, grant=grant, revoke=revoke, replace=before["connections"] if replace is None else replace
    )
    after = await get_app(me, app_id)
    await audit.record(me, "consumer.grants", before["name"], before=before, after=after)
    return after


@atomic
async def set_app_active(me: Principal, app_id: int, active: bool) -> dict[str, Any]:
    """Admin: approve (activate) or suspend an app; a suspended app's keys get 401."""
    me.require_admin()
    await hold_row(Consumer, app_id)
    before = await get_app(me, app_id)
    await manage.set_consumer_active(app_id, active)
    after = await get_app(me, app_id)
    await audit.record(
        me, "consumer.activate" if active else "consumer.suspend", before["name"], before=before, after=after
    )
    return after


def key_state(row: dict[str, Any], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None:
        return "expired" if row["expires_at"] <= now else "expiring"
    return "active"


def _with_state(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{**row, "state": key_state(row, now)} for row in rows]


async def list_app_keys(me: Principal, app_id: int) -> list[dict[str, Any]]:
    await get_app(me, app_id)
    return _with_state(await manage.list_keys(app_id))


async def _key_of_app(me: Principal, app_id: int, key_id: int) -> dict[str, Any]:
    await get_app(me, app_id)
    for row in await list_app_keys(me, app_id):
        if row["id"] == key_id:
            return row
    raise NotFound(f"no key with id {key_id} in this app")


def _expiry(expires_in_days: int | None) -> datetime | None:
    if expires_in_days is None:
        return None
    if not 1 <= expires_in_days <= 3650:
        raise InvalidParameter("expires_in_days", "a key expires after 1 to 3650 days, or never")
    return datetime.now(UTC) + timedelta(days=expires_in_days)


@atomic
async def create_app_key(
    me: Principal, app_id: int, *, name: str = "", expires_in_days: int | None = None
) -> tuple[dict[str, Any], str]:
    """A new key; the secret is returned once and only its hash is kept."""
    app = await get_app(me, app_id)
    if len(name) > 100:
        raise InvalidParameter("name", "a key name has at most 100 characters")
    issued = await manage.create_key(app_id, name=name, expires_at=_expiry(expires_in_days))
    row = await _key_of_app(me, app_id, issued.id)
    await audit.record(me, "key.create", f"{app['name']}/{issued.prefix}", after=row)
    return row, issued.key


def overlap_hours(hours: int) -> timedelta:
    """The overlap a portal form or request gives in hours, refused beyond what a rotation allows."""
    if not 0 <= hours <= MAX_OVERLAP_HOURS:
        raise InvalidParameter("overlap_hours", f"the overlap is 0 to {MAX_OVERLAP_HOURS} hours")
    return timedelta(hours=hours)


async def _rotate(
    me: Principal, app_id: int, key_id: int, overlap: timedelta
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Inside a write transaction: the old key's row after the rotation, the new key's row, the new key."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidParameter(
            "overlap",
            f"the overlap is 0 to {MAX_OVERLAP.total_seconds():.0f} seconds, not {overlap.total_seconds():g}",
        )
    app = await get_app(me, app_id)
    await hold_row(ApiKey, key_id)  # two rotations of one key would each make it a successor
    before = await _key_of_app(me, app_id, key_id)
    if before["state"] in ("revoked", "expired"):
        raise InvalidParameter("key", "only a working key can be rotated")
    issued = await manage.rotate_key(key_id, overlap)
    row = await _key_of_app(me, app_id, issued.id)
    old = await _key_of_app(me, app_id, key_id)
    await audit.record(me, "key.rotate", f"{app['name']}/{before['prefix']}", before=before, after=old)
    return old, row, issued.key


@atomic
async def rotate_app_key(
    me: Principal, app_id: int, key_id: int, *, overlap: timedelta = timedelta(hours=24)
) -> tuple[dict[str, Any], str]:
    """A successor key (its row and the key); the old one keeps working for `overlap`, so clients can
    switch over."""
    _, row, key = await _rotate(me, app_id, key_id, overlap)
    return row, key


@atomic
async def revoke_app_key(me: Principal, app_id: int, key_id: int) -> dict[str, Any]:
    app = await get_app(me, app_id)
    await hold_row(ApiKey, key_id)
    before = await _key_of_app(me, app_id, key_id)
    await manage.revoke_key(key_id)
    after = await _key_of_app(me, app_id, key_id)
    await audit.record(me, "key.revoke", f"{app['name']}/{before['prefix']}", before=before, after=after)
    return after


async def find_keys(me: Principal, prefix: str) -> list[dict[str, Any]]:
    """Admin: keys by the first characters of the key (`ug_AbC…`)."""
    me.require_admin()
    if len(prefix) < 4:
        raise InvalidParameter("prefix", "give at least the first 4 characters of the key")
    return _with_state(await manage.find_keys(prefix))


async def _key_app(key_id: int) -> int:
    row = await ApiKey.select(ApiKey.consumer).where(ApiKey.id == key_id).first()
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    return int(row["consumer"])


async def revoke_any_key(me: Principal, key_id: int) -> dict[str, Any]:
    me.require_admin()
    return await revoke_app_key(me, await _key_app(key_id), key_id)


@atomic
async def rotate_any_key(me: Principal, key_id: int, overlap: timedelta) -> tuple[dict[str, Any], str]:
    """Admin: rotate any app's key, as `unigate keys rotate` does: the old key's row after the rotation
    (until when it works) and the new key."""
    me.require_admin()
    old, _, key = await _rotate(me, await _key_app(key_id), key_id, overlap)
    return old, key
