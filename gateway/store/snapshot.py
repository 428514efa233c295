"""The in-memory view of configuration that the hot path reads instead of the database.

Rebuilt whole when the config version changes, then swapped in with one assignment, so a
request sees the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import msgspec

from gateway.store.crypto import Vault
from gateway.store.tables import ApiKey, ConfigVersion, Connection, Consumer

log = logging.getLogger("unigate.snapshot")


class ConsumerEntry(msgspec.Struct, frozen=True):
    id: int
    name: str
    default_connections: dict[str, str]
    active: bool

    def default_connection(self, resource: str) -> str | None:
        return self.default_connections.get(resource) or self.default_connections.get("*")


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


class Snapshot(msgspec.Struct, frozen=True):
    version: int
    keys: dict[str, KeyEntry]  # sha256 hex -> key
    connections: dict[str, ConnectionEntry]


EMPTY = Snapshot(version=-1, keys={}, connections={})


async def current_version() -> int:
    row = await ConfigVersion.select(ConfigVersion.version).first()
    return int(row["version"]) if row else 0


async def bump_version() -> int:
    """Called by every change to keys, consumers or connections."""
    row = await ConfigVersion.objects().first()
    if row is None:
        await ConfigVersion.insert(ConfigVersion(version=1))
        return 1
    await ConfigVersion.update({ConfigVersion.version: ConfigVersion.version + 1}).where(
        ConfigVersion.id == row.id
    )
    return await current_version()


async def load_snapshot(vault: Vault) -> Snapshot:
    version = await current_version()
    consumers = {
        row["id"]: ConsumerEntry(
            id=row["id"],
            name=row["name"],
            default_connections=_json(row["default_connections"]),
            active=row["active"],
        )
        for row in await Consumer.select()
    }
    keys = {
        row["key_hash"]: KeyEntry(
            id=row["id"], consumer=consumers[row["consumer"]], expires_at=row["expires_at"]
        )
        for row in await ApiKey.select().where(ApiKey.revoked_at.is_null())
        if row["consumer"] in consumers
    }
    connections = {
        row["name"]: ConnectionEntry(
            id=row["id"],
            name=row["name"],
            system=row["system"],
            base_url=row["base_url"],
            credentials=vault.open(row["credentials"]),
            options=_json(row["options"]),
            updated_at=row["updated_at"],
        )
        for row in await Connection.select()
    }
    return Snapshot(version=version, keys=keys, connections=connections)


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


class SnapshotHolder:
    """Holds the current snapshot and refreshes it when the config version moves."""

    def __init__(self, vault: Vault, poll_seconds: float) -> None:
        self.vault = vault
        self.poll_seconds = poll_seconds
        self.current: Snapshot = EMPTY
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> Snapshot:
        self.current = await load_snapshot(self.vault)
        return self.current

    async def refresh_if_changed(self) -> bool:
        if await current_version() == self.current.version:
            return False
        await self.refresh()
        log.info("config snapshot reloaded", extra={"version": self.current.version})
        return True

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh_if_changed()
            except Exception:  # the old snapshot keeps serving while the database is away
                log.exception("config snapshot refresh failed")
