"""Data step of the connection grants: every existing consumer is granted the existing connections its
defaults name, so an upgrade does not cut off an application that works (its X-Connection use of others
stops). A default naming no connection grants nothing: a connection created later under that name must
not be granted already."""

from typing import Any

import msgspec
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Serial, Varchar
from piccolo.table import Table

ID = "2026-11-29T11:52:11:000000"
VERSION = "1.38.0"
DESCRIPTION = "grant each consumer the existing connections its defaults name"


class Consumer(Table, tablename="unigate_consumer", schema=None):
    id = Serial(primary_key=True)
    default_connections = JSON(default={})
    connections = JSON(default=[])


class Connection(Table, tablename="unigate_connection", schema=None):
    id = Serial(primary_key=True)
    name = Varchar(length=100)


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


async def grant_defaults() -> None:
    known = {row["name"] for row in await Connection.select(Connection.name)}
    for row in await Consumer.select(Consumer.id, Consumer.default_connections, Consumer.connections):
        defaults = _json(row["default_connections"]) or {}
        granted = set(_json(row["connections"]) or [])
        wanted = sorted(granted | {name for name in defaults.values() if name in known})
        if wanted != sorted(granted):
            await Consumer.update({Consumer.connections: wanted}).where(Consumer.id == row["id"])


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="unigate", description=DESCRIPTION)
    manager.add_raw(grant_defaults)
    return manager
