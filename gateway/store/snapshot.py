"""The in-memory view of configuration that the hot path reads instead of the database.

Rebuilt whole when the config version changes, then swapped in with one assignment, so a
request sees the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import msgspec

from gateway.errors import ConnectionNotGranted, InvalidParameter
from gateway.store.crypto import SealedValueUnreadable, Vault
from gateway.store.engine import after_commit, read_transaction
from gateway.store.policy_tables import ApiPolicy, ConsumerPolicy, OAuthClient, Plan, SigningKey, Subscription
from gateway.store.tables import ApiKey, ConfigVersion, Connection, Consumer
from gateway.trouble import Trouble

log = logging.getLogger("unigate.snapshot")


class ConsumerEntry(msgspec.Struct, frozen=True):
    id: int
    name: str
    default_connections: dict[str, str]
    active: bool  # its own state: False when suspended
    # The connections granted to it besides the open ones; "*" grants every one.
    connections: frozenset[str] = frozenset()
    # The developer account owning it is disabled: none of its apps may call, whatever their own state,
    # which is kept as it was so that enabling the account again restores each app as it stood.
    owner_disabled: bool = False

    @property
    def usable(self) -> bool:
        """May it call the APIs and get tokens: neither suspended itself nor owned by a disabled account."""
        return self.active and not self.owner_disabled

    def default_connection(self, resource: str) -> str | None:
        return self.default_connections.get(resource) or self.default_connections.get("*")

    def may_use(self, connection: ConnectionEntry) -> bool:
        return may_use(self.connections, connection.name, connection.open)


def may_use(granted: Collection[str], name: str, open: bool) -> bool:
    """THE rule of connection grants: an application may use a connection that is open to every
    application, one granted to it by name, or any when it is granted `*`. Everything that decides it
    (the request path, the portal, the store's checks, config apply) asks this function."""
    return open or "*" in granted or name in granted


def resolve_connection(
    connections: Mapping[str, ConnectionEntry],
    consumer: ConsumerEntry,
    resource: str,
    chosen: str | None,
    header: str = "X-Connection",
) -> ConnectionEntry:
    """The connection a request goes to: the one named in `header`, else the consumer's default for
    `resource`, if the consumer may use it. Resolved once per request, against the request's snapshot
    (policies/connection.py); the handler, the cache key and the metering label all use the result."""
    name = chosen or consumer.default_connection(resource)
    if not name:
        raise InvalidParameter(
            header, f"choose a connection with the {header} header: no default is set for {resource}"
        )
    entry = connections.get(name)
    if entry is None and (not chosen or "*" in consumer.connections):
        # Its own default, or a caller that may use every connection: no name is revealed by saying so.
        raise InvalidParameter(header, f"there is no connection named {name!r}")
    if entry is None or not consumer.may_use(entry):
        # An unknown name and an ungranted one answer alike, so callers cannot list the connections.
        if chosen:
            raise ConnectionNotGranted(
                f"this application may not use the connection {name!r} named in {header}: "
                "ask an admin to grant it",
                field=header,
            )
        raise ConnectionNotGranted(
            f"this application's default connection for {resource}, {name!r}, is not granted to it: "
            "ask an admin to grant it"
        )
    return entry


class KeyEntry(msgspec.Struct, frozen=True):
    id: int
    consumer: ConsumerEntry
    expires_at: datetime | None


class ConnectionEntry(msgspec.Struct, frozen=True):
    id: int
    name: str
    system: str
    base_url: str
    credentials: dict[str, Any]
    options: dict[str, Any]
    updated_at: datetime
    open: bool = False  # every application may use it, granted or not
    # Its credentials do not open with this node's UNIGATE_SECRET_KEY (sealed with another key): it is
    # loaded with none, for calls through it to be refused by name (gateway/runtime.py), not the whole
    # snapshot to fail on it.
    unreadable: bool = False


class PlanEntry(msgspec.Struct, frozen=True):
    id: int
    name: str
    config: dict[str, Any]  # a PlanConfig, validated when saved (policies/authorize.py)
    requires_approval: bool


class SubscriptionEntry(msgspec.Struct, frozen=True):
    id: int
    consumer_id: int
    api: str
    plan_id: int
    status: str  # pending | active | suspended


class ConsumerPolicyEntry(msgspec.Struct, frozen=True):
    consumer_id: int
    overrides: dict[str, Any]  # a partial PlanConfig
    ip_allow: tuple[str, ...]
    ip_deny: tuple[str, ...]


class OAuthClientEntry(msgspec.Struct, frozen=True):
    id: int
    client_id: str
    consumer: ConsumerEntry
    secret_hash: str
    previous_secret_hash: str | None
    previous_expires_at: datetime | None
    scopes: frozenset[str]


class SigningKeyEntry(msgspec.Struct, frozen=True):
    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    # None: sealed with a key this node does not hold. Still published and verifying (its public half is
    # not sealed: tokens another node signs with it must work here too), never signing from this node.
    private_jwk: dict[str, Any] | None
    activates_at: datetime


class ApiPolicyEntry(msgspec.Struct, frozen=True):
    api: str
    cors: dict[str, Any]  # a CorsConfig, validated when saved (policies/cors.py)
    max_body_bytes: int | None


class Snapshot(msgspec.Struct, frozen=True):
    version: int
    keys: dict[str, KeyEntry]  # sha256 hex -> key
    connections: dict[str, ConnectionEntry]
    plans: dict[int, PlanEntry] = {}
    subscriptions: dict[tuple[int, str], SubscriptionEntry] = {}  # (consumer id, api) -> subscription
    consumer_policies: dict[int, ConsumerPolicyEntry] = {}
    oauth_clients: dict[str, OAuthClientEntry] = {}  # client_id -> client (revoked ones left out)
    signing_keys: tuple[SigningKeyEntry, ...] = ()  # published keys, oldest activation first
    api_policies: dict[str, ApiPolicyEntry] = {}
    # What this node's UNIGATE_SECRET_KEY does not open, left out or loaded unusable: /readyz names them.

    # What this node's UNIGATE_SECRET_KEY does not open (read from the entries): /readyz names them.
    @property
    def unreadable_connections(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, entry in self.connections.items() if entry.unreadable))

    @property
    def unreadable_signing_keys(self) -> tuple[str, ...]:  # kids this node cannot sign with (still verifying)
        return tuple(key.kid for key in self.signing_keys if key.private_jwk is None)

    def unreadable(self) -> dict[str, list[str]]:
        """The report of them for /readyz and the logs; empty when this node's key opens everything."""
        connections, signing_keys = self.unreadable_connections, self.unreadable_signing_keys
        if not (connections or signing_keys):
            return {}
        return {"connections": list(connections), "signing_keys": list(signing_keys)}


EMPTY = Snapshot(version=-1, keys={}, connections={})


async def current_version() -> int:
    row = await ConfigVersion.select(ConfigVersion.version).first()
    return int(row["version"]) if row else 0


VersionPublisher = Callable[[int], Awaitable[None]]
_publisher: VersionPublisher | None = None


def publish_versions_with(publisher: VersionPublisher | None) -> None:
    """Announce every new config version to the other nodes (policies/reload.py, over Redis); None stops."""
    global _publisher
    _publisher = publisher


async def bump_version() -> int:
    """Called by every change to keys, consumers, connections or the status of accounts (which own apps).
    Inside a write transaction, the other nodes are told once it commits."""
    row = await ConfigVersion.objects().first()
    if row is None:
        await ConfigVersion.insert(ConfigVersion(version=1))
        version = 1
    else:
        await ConfigVersion.update({ConfigVersion.version: ConfigVersion.version + 1}).where(
            ConfigVersion.id == row.id
        )
        version = await current_version()
    if not after_commit(lambda: _announce(version)):
        await _announce(version)
    return version


async def _announce(version: int) -> None:
    if _publisher is None:
        return
    try:
        await _publisher(version)
    except Exception as error:  # the change is saved; nodes pick it up at their next poll instead
        log.warning(
            "config version not announced; the nodes pick it up at their next poll",
            extra={"version": version, "error": f"{type(error).__name__}: {error}"},
        )


async def load_snapshot(vault: Vault) -> Snapshot:
    """The config as of one moment: every table read in one transaction, so a change committing meanwhile
    is either all in (with its version) or all out, never half."""
    async with read_transaction(ConfigVersion._meta.db):
        return await _load(vault)


async def _load(vault: Vault) -> Snapshot:
    version = await current_version()
    consumers = {
        row["id"]: ConsumerEntry(
            id=row["id"],
            name=row["name"],
            default_connections=_json(row["default_connections"]),
            active=row["active"],
            connections=frozenset(_json(row["connections"]) or ()),
            owner_disabled=row["owner_status"] == "disabled",
        )
        # The owner's status read with the app, in the same moment (an app without an owner: None).
        for row in await Consumer.select(
            *Consumer.all_columns(), Consumer.owner.status.as_alias("owner_status")
        )
    }
    keys = {
        row["key_hash"]: KeyEntry(
            id=row["id"], consumer=consumers[row["consumer"]], expires_at=row["expires_at"]
        )
        for row in await ApiKey.select().where(ApiKey.revoked_at.is_null())
        if row["consumer"] in consumers
    }
    connections = {}
    for row in await Connection.select():
        credentials = _opened(vault, row["credentials"])
        connections[row["name"]] = ConnectionEntry(
            id=row["id"],
            name=row["name"],
            system=row["system"],
            base_url=row["base_url"],
            credentials=credentials or {},
            options=_json(row["options"]),
            updated_at=row["updated_at"],
            open=bool(row["open"]),
            unreadable=credentials is None,
        )
    policy = await _policy_config(vault, consumers)
    return Snapshot(version=version, keys=keys, connections=connections, **policy)


def _opened(vault: Vault, token: str) -> dict[str, Any] | None:
    """The sealed value, or None when this node's key does not open it: one such row (written by a process
    with another key) must not keep every other change from this node."""
    try:
        return vault.open(token)
    except SealedValueUnreadable:
        return None


async def _policy_config(vault: Vault, consumers: dict[int, ConsumerEntry]) -> dict[str, Any]:
    """Plans, subscriptions, consumer rules, OAuth clients, signing keys and API rules (policies/)."""
    signing_keys = []
    for row in (
        await SigningKey.select().where(SigningKey.retired_at.is_null()).order_by(SigningKey.activates_at)
    ):
        private = _opened(vault, row["private_jwk"])  # None: not ours to open (Snapshot.unreadable)
        signing_keys.append(
            SigningKeyEntry(
                row["kid"], row["algorithm"], _json(row["public_jwk"]), private, row["activates_at"]
            )
        )
    plans = {
        row["id"]: PlanEntry(row["id"], row["name"], _json(row["config"]), row["requires_approval"])
        for row in await Plan.select()
    }
    return {
        "plans": plans,
        "subscriptions": {
            (row["consumer"], row["api"]): SubscriptionEntry(
                row["id"], row["consumer"], row["api"], row["plan"], row["status"]
            )
            for row in await Subscription.select()
            if row["plan"] in plans
        },
        "consumer_policies": {
            row["consumer"]: ConsumerPolicyEntry(
                row["consumer"],
                _json(row["overrides"]),
                tuple(_json(row["ip_allow"])),
                tuple(_json(row["ip_deny"])),
            )
            for row in await ConsumerPolicy.select()
        },
        "oauth_clients": {
            row["client_id"]: OAuthClientEntry(
                row["id"],
                row["client_id"],
                consumers[row["consumer"]],
                row["secret_hash"],
                row["previous_secret_hash"],
                row["previous_expires_at"],
                frozenset(_json(row["scopes"])),
            )
            for row in await OAuthClient.select().where(OAuthClient.revoked_at.is_null())
            if row["consumer"] in consumers
        },
        "signing_keys": tuple(signing_keys),
        "api_policies": {
            row["api"]: ApiPolicyEntry(row["api"], _json(row["cors"]), row["max_body_bytes"])
            for row in await ApiPolicy.select()
        },
    }


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


class SnapshotHolder:
    """Holds the current snapshot and refreshes it when the config version moves."""

    def __init__(self, vault: Vault, poll_seconds: float) -> None:
        self.vault = vault
        self.poll_seconds = poll_seconds
        self.current: Snapshot = EMPTY
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # The poll and the pub/sub listener may both refresh: one at a time, so an older load never
        # replaces a newer one.
        self._lock = asyncio.Lock()
        self._warned_version: int | None = None

    async def refresh(self) -> Snapshot:
        async with self._lock:
            self.current = await load_snapshot(self.vault)
            self._warn_unreadable()
            return self.current

    async def refresh_if_changed(self) -> bool:
        async with self._lock:
            if await current_version() == self.current.version:
                return False
            self.current = await load_snapshot(self.vault)
            self._warn_unreadable()
        log.info("config snapshot reloaded", extra={"version": self.current.version})
        return True

    def _warn_unreadable(self) -> None:
        """Once per config version (and process), not per request: what this node's key does not open."""
        snapshot = self.current
        unreadable = snapshot.unreadable()
        if not unreadable or snapshot.version == self._warned_version:
            return
        self._warned_version = snapshot.version
        log.warning(
            "some sealed values do not open with this node's UNIGATE_SECRET_KEY (sealed with another key): "
            "those connections refuse calls and those signing keys are not used; give their credentials "
            "again, or add the key they were sealed with (NEW,OLD)",
            extra={"version": snapshot.version, **unreadable},
        )

    # How long stop() lets a refresh in flight finish before cancelling it.
    STOP_GRACE_SECONDS = 5.0

    async def start(self) -> None:
        await self.refresh()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        """End the poll between two refreshes. A query cancelled halfway keeps running in aiosqlite's
        thread, which then hands its answer to an event loop that may be closed by then (a traceback
        on every other Ctrl-C of `unigate demo`): a refresh in flight is let finish instead."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.STOP_GRACE_SECONDS)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _poll(self) -> None:
        # The old snapshot keeps serving while the database is away: said once, then a line a minute.
        trouble = Trouble(
            log,
            "config snapshot refresh",
            "config snapshot refresh failed; serving the last snapshot meanwhile",
        )
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.refresh_if_changed()
            except Exception:
                trouble.failed()
            else:
                trouble.ok()
