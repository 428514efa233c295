"""Changes to configuration: consumers, API keys and connections. Every change bumps the config version.

The CLI and the portal both call these; neither writes tables directly.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
from piccolo.query.functions.aggregate import Count

from gateway.connectors.base import ConnectionConfig
from gateway.connectors.registry import SYSTEMS, apis_of, build, systems_serving
from gateway.errors import Conflict, InvalidParameter, NotFound
from gateway.store.crypto import Vault
from gateway.store.engine import atomic, hold_row
from gateway.store.reseal import require_database_key
from gateway.store.snapshot import bump_version, may_use
from gateway.store.tables import ApiKey, Connection, Consumer
from gateway.upstream import Upstream
from policies.backend import parse_options
from policies.chain import APIS

KEY_PREFIX = "ug_"
# Names are keys of `unigate config export`, parts of metric labels and URLs: one rule for every way in.
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,99}$")
NAME_RULE = "2-100 lowercase letters, digits or . _ -, starting with a letter or digit"


def check_name(kind: str, name: str) -> None:
    """Refuse a consumer or connection name `unigate config apply` could not read back."""
    if not NAME.match(name):
        raise InvalidParameter("name", f"{name!r} is not a valid {kind} name: use {NAME_RULE}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class IssuedKey(msgspec.Struct, frozen=True):
    id: int
    key: str  # shown once, never stored
    prefix: str


@atomic
async def create_consumer(
    name: str,
    default_connections: dict[str, str] | None = None,
    *,
    owner: int | None = None,
    description: str = "",
    grants: list[str] | None = None,
    by_admin: bool = False,
) -> int:
    """A new consumer. An admin (`by_admin`, which callers acting for one say explicitly) grants it the
    connections its defaults name by naming them; otherwise, as for a developer, the defaults must be
    connections the consumer may use (open, or among `grants`) and grant nothing."""
    check_name("consumer", name)
    if await Consumer.exists().where(Consumer.name == name):
        raise Conflict(f"a consumer named {name!r} already exists", field="name")
    granted = await check_grants(grants or [])
    defaults = await check_defaults(default_connections or {}, usable=None if by_admin else granted)
    if by_admin:
        granted = granting(granted, defaults)
    rows = await Consumer.insert(
        Consumer(
            name=name,
            default_connections=defaults,
            owner=owner,
            description=description,
            connections=granted,
        )
    )
    await bump_version()
    return int(rows[0]["id"])


def granting(granted: list[str], defaults: dict[str, str], was: dict[str, str] | None = None) -> list[str]:
    """`granted` plus the connections `defaults` name where they differ from `was` (the defaults before an
    edit): an admin grants a connection by naming it as a default, but a default left as it was is not
    granted again (an admin may have revoked it). Sorted, so exports compare like with like."""
    was = was or {}
    return sorted(set(granted) | {name for resource, name in defaults.items() if was.get(resource) != name})


async def check_defaults(defaults: dict[str, str], *, usable: list[str] | None = None) -> dict[str, str]:
    """A consumer's default connection per resource: each resource known, each connection there. With
    `usable` (a developer choosing), each must also be open or in `usable`, the app's granted connections;
    one that is not reads as one that does not exist, so a developer cannot probe for names.

    Each must serve its API (as its system's connector says), or every call would fail 501. The `*`
    default stands in for the APIs without their own: it must serve at least one of those, and the others
    then fail 501 until they are given a default of their own (a kuaidi100 `*` beside a Wangdiantong
    `stockouts` is fine)."""
    clean = {resource: name for resource, name in defaults.items() if name}
    for resource, name in clean.items():
        if resource not in (*APIS, "*"):
            raise InvalidParameter(
                f"default_connections.{resource}", f"the resources are: {', '.join(APIS)} or *"
            )
        row = (
            await Connection.select(Connection.open, Connection.system).where(Connection.name == name).first()
        )
        if row is None and usable is None:
            raise InvalidParameter(
                f"default_connections.{resource}", f"there is no connection named {name!r}"
            )
        if usable is not None and not (row and may_use(usable, name, row["open"])):
            raise InvalidParameter(
                f"default_connections.{resource}",
                f"there is no connection named {name!r} that this app may use: "
                "choose an open one, or ask an admin to grant it",
            )
        if row is not None:
            check_serves(resource, name, row["system"], [api for api in APIS if api not in clean])
    return clean


def check_serves(resource: str, name: str, system: str, left: list[str]) -> None:
    """Refuse a default naming a connection whose system serves none of the APIs it would answer for:
    its own (`stockouts`), or for `*` the ones `left` without a default of their own."""
    apis = [resource] if resource != "*" else left
    served = apis_of(system)
    if not apis or any(api in served for api in apis):
        return
    serving = {api: ", ".join(systems_serving(api)) or "no system" for api in apis}
    raise InvalidParameter(
        f"default_connections.{resource}",
        f"{name!r} is a {system} connection, which serves {', '.join(served) or 'no API'}, not "
        + "; ".join(f"{api} (served by {systems})" for api, systems in serving.items()),
    )


async def check_grants(names: list[str]) -> list[str]:
    """Connection names to grant, each existing (or `*`, every connection); sorted, without repeats."""
    clean = sorted({name.strip() for name in names if name.strip()})
    known = {row["name"] for row in await Connection.select(Connection.name)}
    for name in clean:
        if name != "*" and name not in known:
            raise InvalidParameter("connections", f"there is no connection named {name!r}")
    return clean


async def granted_connections(consumer: int) -> list[str]:
    row = await Consumer.select(Consumer.connections).where(Consumer.id == consumer).first()
    if row is None:
        raise NotFound(f"no consumer with id {consumer}")
    return sorted(_json(row["connections"]) or [])


@atomic
async def set_granted_connections(consumer: int, names: list[str]) -> list[str]:
    """Replace the connections granted to a consumer; every node applies it at its next snapshot."""
    clean = await check_grants(names)
    updated = (
        await Consumer.update({Consumer.connections: clean})
        .where(Consumer.id == consumer)
        .returning(Consumer.id)
    )
    if not updated:
        raise NotFound(f"no consumer with id {consumer}")
    await bump_version()
    return clean


@atomic
async def change_grants(
    consumer: int,
    *,
    grant: Sequence[str] = (),
    revoke: Sequence[str] = (),
    replace: Sequence[str] | None = None,
) -> list[str]:
    """Grant and take back connections, from the consumer's grants or from `replace`. A default naming a
    revoked connection stays, and is refused at call time (403)."""
    await hold_row(Consumer, consumer)
    names = [*(await granted_connections(consumer) if replace is None else replace), *grant]
    check_revocable(names, revoke)
    return await set_granted_connections(consumer, [name for name in names if name not in set(revoke)])


async def grant_connections(consumer: int, names: list[str]) -> list[str]:
    return await change_grants(consumer, grant=names)


async def revoke_connections(consumer: int, names: list[str]) -> list[str]:
    return await change_grants(consumer, revoke=names)


def check_revocable(have: list[str], names: Sequence[str]) -> None:
    """Refuse revoking connections by name from a consumer granted `*` (unless `*` goes too): it would
    still use them all, and the revoke would silently do nothing."""
    named = [name for name in names if name.strip() and name != "*"]
    if "*" in have and "*" not in names and named:
        raise InvalidParameter(
            "connections",
            f"this application is granted every connection (*), so revoking {', '.join(map(repr, named))} "
            "would change nothing: revoke * and grant the connections it may use",
        )


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


async def consumer_id(name: str) -> int:
    row = await Consumer.select(Consumer.id).where(Consumer.name == name).first()
    if row is None:
        raise NotFound(f"no consumer named {name!r}")
    return int(row["id"])


@atomic
async def create_key(consumer: int, name: str = "", expires_at: datetime | None = None) -> IssuedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key[:11]
    rows = await ApiKey.insert(
        ApiKey(consumer=consumer, name=name, prefix=prefix, key_hash=hash_key(key), expires_at=expires_at)
    )
    await bump_version()
    return IssuedKey(id=int(rows[0]["id"]), key=key, prefix=prefix)


@atomic
async def revoke_key(key_id: int) -> None:
    updated = (
        await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)})
        .where(ApiKey.id == key_id)
        .returning(ApiKey.id)
    )
    if not updated:
        raise NotFound(f"no API key with id {key_id}")
    await bump_version()


@atomic
async def rotate_key(key_id: int, overlap: timedelta) -> IssuedKey:
    """A new key for the same consumer; the old one keeps working for `overlap`, then expires."""
    row = await ApiKey.select().where(ApiKey.id == key_id).first()
    if row is None or row["revoked_at"] is not None:
        raise NotFound(f"no active API key with id {key_id}")
    ends = datetime.now(UTC) + overlap
    if row["expires_at"] is not None and row["expires_at"] < ends:
        ends = row["expires_at"]  # rotation never extends a key's life
    await ApiKey.update({ApiKey.expires_at: ends}).where(ApiKey.id == key_id)
    return await create_key(row["consumer"], name=row["name"], expires_at=None)


async def find_keys(prefix: str) -> list[dict[str, Any]]:
    """Keys whose prefix starts with `prefix` (the first characters of a key, as shown in lists)."""
    return await list_keys(prefix=prefix)


@atomic
async def set_consumer_active(consumer: int, active: bool) -> None:
    updated = (
        await Consumer.update({Consumer.active: active}).where(Consumer.id == consumer).returning(Consumer.id)
    )
    if not updated:
        raise NotFound(f"no consumer with id {consumer}")
    await bump_version()


async def list_consumers() -> list[dict[str, Any]]:
    """Every consumer by name, with its default connections and how many of its keys are live."""
    consumers = (
        await Consumer.select(
            Consumer.id,
            Consumer.name,
            Consumer.active,
            Consumer.default_connections,
            Consumer.connections,
            Consumer.created_at,
        )
        .order_by(Consumer.name)
        .output(load_json=True)
    )
    live = (
        await ApiKey.select(ApiKey.consumer, Count(alias="keys"))
        .where(ApiKey.revoked_at.is_null())
        .group_by(ApiKey.consumer)
    )
    counts = {row["consumer"]: row["keys"] for row in live}
    return [{**row, "keys": counts.get(row["id"], 0)} for row in consumers]


async def list_keys(consumer: int | None = None, prefix: str | None = None) -> list[dict[str, Any]]:
    query = ApiKey.select(
        ApiKey.id,
        ApiKey.consumer.name.as_alias("consumer"),
        ApiKey.name,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.expires_at,
        ApiKey.revoked_at,
    ).order_by(ApiKey.id)
    if consumer is not None:
        query = query.where(ApiKey.consumer == consumer)
    if prefix:
        # Stored prefixes are the key's first 11 characters; `_` matching any one character only widens it.
        query = query.where(ApiKey.prefix.like(prefix[:11].replace("%", "") + "%"))
    return list(await query)


async def touch_keys(used: dict[int, datetime]) -> None:
    """Record last use, batched off the hot path."""
    for key_id, when in used.items():
        await ApiKey.update({ApiKey.last_used_at: when}).where(ApiKey.id == key_id)


def check_connection(name: str, system: str, base_url: str, credentials: dict[str, Any]) -> None:
    """A connection every way in may save: its name, system and URL, and the credentials its connector
    asks for, which the connector itself names when one lacks (`credentials.appsecret`)."""
    check_name("connection", name)
    if system not in SYSTEMS:
        raise InvalidParameter("system", f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidParameter("base_url", "base_url must start with http:// or https://")
    parts = urlsplit(base_url)
    try:
        _ = parts.port  # read when called: a port that is not a number from 0 to 65535 raises
    except ValueError:
        raise InvalidParameter("base_url", "base_url's port must be a number from 0 to 65535") from None
    if "@" in parts.netloc:
        raise InvalidParameter(
            "base_url",
            "base_url carries a user or password: put secrets in the credentials, which are sealed, never in "
            "the URL, which lists and the audit log show",
        )
    config = ConnectionConfig(name=name, system=system, base_url=base_url, credentials=credentials)
    build(config, Upstream(timeout_seconds=1))  # built to check only: it never sends


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def check_credentials_follow(
    stored_url: str | None, base_url: str, kept: Iterable[str], field: str = "credentials"
) -> None:
    """Stored credentials stay with the host they were given for: a base_url moved to another scheme, host
    or port must come with them again, or whoever may edit a connection could point it at a server of
    theirs and have the gateway send it the secrets (signed calls carry them, or let them be guessed)."""
    kept = sorted(kept)
    if stored_url is None or not kept:
        return
    try:
        if not base_url.startswith(("http://", "https://")) or _origin(stored_url) == _origin(base_url):
            return
    except ValueError:
        return  # not a URL (a port that is no number): check_connection refuses it for what it is
    moved = f"{urlsplit(stored_url).netloc} -> {urlsplit(base_url).netloc}"
    raise InvalidParameter(
        f"{field}.{kept[0]}",
        f"base_url moves this connection to another host ({moved}): give its credentials "
        f"({', '.join(kept)}) again; stored ones are never sent to a new address",
    )


@atomic
async def put_connection(
    vault: Vault,
    *,
    name: str,
    system: str,
    base_url: str,
    credentials: dict[str, Any],
    options: dict[str, Any] | None = None,
    open: bool | None = None,
) -> int:
    """Create or replace a connection; credentials are sealed before they touch the database.
    `open` (every application may use it) is kept as it is when None, and false for a new one."""
    check_connection(name, system, base_url, credentials)
    parse_options(options)  # the backend limits, timeout, retries and breaker: refused here, not at a call
    # Sealed with a key no other node has, the connection would be unusable on every one of them.
    await require_database_key(vault)
    sealed = vault.seal(credentials)
    existing = await Connection.select(Connection.id).where(Connection.name == name).first()
    values: dict[Any, Any] = {
        Connection.system: system,
        Connection.base_url: base_url.rstrip("/"),
        Connection.credentials: sealed,
        Connection.options: options or {},
        Connection.updated_at: datetime.now(UTC),
    }
    if open is not None:
        values[Connection.open] = open
    if existing:
        await Connection.update(values).where(Connection.id == existing["id"])
        conn_id = int(existing["id"])
    else:
        rows = await Connection.insert(
            Connection(
                name=name,
                system=system,
                base_url=base_url.rstrip("/"),
                credentials=sealed,
                options=options or {},
                open=bool(open),
            )
        )
        conn_id = int(rows[0]["id"])
    await bump_version()
    return conn_id


async def list_connections() -> list[dict[str, Any]]:
    """Connections without their credentials: those are write-only."""
    return list(
        await Connection.select(
            Connection.id,
            Connection.name,
            Connection.system,
            Connection.base_url,
            Connection.options,
            Connection.open,
        ).order_by(Connection.name)
    )


@atomic
async def set_connection_open(name: str, open: bool) -> None:
    """Open a connection to every application, or close it to those it is not granted to."""
    updated = (
        await Connection.update({Connection.open: open})
        .where(Connection.name == name)
        .returning(Connection.id)
    )
    if not updated:
        raise NotFound(f"no connection named {name!r}")
    await bump_version()


@atomic
async def delete_connection(name: str) -> None:
    deleted = await Connection.delete().where(Connection.name == name).returning(Connection.id)
    if not deleted:
        raise NotFound(f"no connection named {name!r}")
    await forget_grants({name})
    await bump_version()


async def forget_grants(deleted: set[str]) -> None:
    """Take deleted connections out of every grant: a new connection of the same name is not granted."""
    if not deleted:
        return
    for row in await Consumer.select(Consumer.id, Consumer.connections):
        granted = _json(row["connections"]) or []
        if deleted & set(granted):
            kept = [name for name in granted if name not in deleted]
            await Consumer.update({Consumer.connections: kept}).where(Consumer.id == row["id"])
