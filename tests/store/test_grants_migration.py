"""Upgrading to connection grants, on both engines: consumers that existed before are granted the
existing connections their defaults name, so the calls they make today keep working; connections start
closed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from gateway.store.tables import Connection, Consumer
from tests.conftest import bound_store, gateway_env, migrate

# The last migration before the grants: the database an upgrade starts from.
BEFORE_GRANTS = "2026-11-29T02:46:16:550658"


def _json(value: object) -> object:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


async def test_an_upgrade_grants_each_consumer_the_connections_its_defaults_name(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    # The database of the release before: migrated up to the grants, not through them.
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "piccolo.main", "migrations", "forwards", "unigate", BEFORE_GRANTS],
        env={**os.environ, **env, "PICCOLO_CONF": "gateway.store.piccolo_conf"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    async with bound_store(env):
        # Written as that release wrote them: its tables have neither column yet.
        for name, defaults in (
            ("shop", {"stockouts": "wdt-main", "orders": "wdt-main", "logistics": "kd100"}),
            ("fallback", {"*": "wdt-other"}),
            ("bare", {}),
        ):
            await Consumer.raw(
                "INSERT INTO unigate_consumer (name, description, default_connections, active, created_at) "
                "VALUES ({}, '', {}, true, CURRENT_TIMESTAMP)",
                name,
                msgspec.json.encode(defaults).decode(),
            )
        await Connection.raw(
            "INSERT INTO unigate_connection (name, system, base_url, credentials, options, created_at, "
            "updated_at) VALUES ('wdt-main', 'wangdiantong', 'http://h', 'x', {}, CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP)",
            "{}",  # `{}` in the SQL is Piccolo's placeholder: the empty options go as a value
        )

    migrate(env)  # the upgrade, as an operator runs it

    async with bound_store(env):
        granted = {
            row["name"]: _json(row["connections"])
            for row in await Consumer.select(Consumer.name, Consumer.connections)
        }
        opened = await Connection.select(Connection.name, Connection.open)
    # Only names that are connections are granted: a default naming none (kd100, wdt-other) grants
    # nothing, or a connection created later under that name would be granted already.
    assert granted == {"shop": ["wdt-main"], "fallback": [], "bare": []}
    assert opened == [{"name": "wdt-main", "open": False}]
