"""Run Piccolo's migrations for unigate's tables, one process at a time, and tell a starting node whether
its database is the one its code expects."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration

from gateway.settings import Settings
from gateway.store.engine import BUSY, REFUSED
from gateway.store.piccolo_app import APP_CONFIG

# The PostgreSQL advisory lock every `unigate migrate` takes (any number, the same in every version).
MIGRATION_LOCK = 0x756E6967  # "unig"


class MigrationError(RuntimeError):
    """Migrations could not be applied; the message says why, in one line."""


@dataclass(frozen=True)
class State:
    """The migrations this code has and those the database says it ran."""

    known: tuple[str, ...]
    applied: tuple[str, ...]

    @property
    def pending(self) -> tuple[str, ...]:
        """Migrations this code needs that the database has not had: run `unigate migrate`."""
        return tuple(sorted(set(self.known) - set(self.applied)))

    @property
    def unknown(self) -> tuple[str, ...]:
        """Migrations the database had that this code does not know: a newer unigate migrated it."""
        return tuple(sorted(set(self.applied) - set(self.known)))


def known_migrations() -> tuple[str, ...]:
    modules = BaseMigrationManager().get_migration_modules(APP_CONFIG.resolved_migrations_folder_path)
    return tuple(sorted(modules))


async def state() -> State:
    """Where the configured database stands. Raises what connecting raises when it cannot be reached."""
    applied: list[str] = []
    if await Migration.table_exists().run():
        applied = await Migration.get_migrations_which_ran(app_name=APP_CONFIG.app_name)
    return State(known=known_migrations(), applied=tuple(applied))


async def wait_until_migrated(patience: float, waiting: Callable[[str], None]) -> State:
    """The database's state once it answers and has every migration this code needs. A node started
    before its database (or before `unigate migrate` is done) waits up to `patience` seconds, calling
    `waiting` each time the reason changes; MigrationError after that, or at once when the database
    refuses this node (no such database, role or password: waiting cannot mend a wrong DATABASE_URL)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pause, said = 0.25, ""
    while True:
        try:
            # A host that drops packets would hold a connection attempt for a minute.
            found = await asyncio.wait_for(state(), timeout=max(1.0, min(5.0, deadline - loop.time())))
        except REFUSED as error:
            raise MigrationError(f"the database refuses this node: {error}") from None
        except (OSError, TimeoutError, sqlite3.OperationalError, *BUSY) as error:
            reason = f"the database does not answer ({str(error) or type(error).__name__})"
        else:
            if not found.pending:
                return found
            reason = (
                f"the database lacks {len(found.pending)} of the {len(found.known)} migrations this "
                "unigate needs: run `unigate migrate`"
            )
        left = deadline - loop.time()
        if left <= 0:
            raise MigrationError(f"{reason}; gave up after {patience:g}s (UNIGATE_START_TIMEOUT)")
        if reason != said:
            waiting(reason)
            said = reason
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 2.0)


async def migrate(settings: Settings) -> State:
    """Apply what is pending; return where the database stood before. Several nodes may run this at once
    (each container's start script, a deploy job): they take turns, and those after the first find
    nothing left to do."""
    async with _exclusive(settings):
        before = await state()
        # Piccolo narrates on stdout, and miscounts ("5 migrations already complete" on an empty database):
        # the caller reports what was applied instead.
        with contextlib.redirect_stdout(io.StringIO()) as narration:
            result = await run_forwards(app_name=APP_CONFIG.app_name)
        if not result.success:
            raise MigrationError(f"migrations failed: {result.message}; {narration.getvalue().strip()}")
    return before


@contextlib.asynccontextmanager
async def _exclusive(settings: Settings) -> AsyncIterator[None]:
    """Held by one migrating process at a time: a PostgreSQL advisory lock (released with its connection,
    whatever happens to the process), or an flock beside the SQLite file."""
    if settings.is_postgres:
        connection = await asyncpg.connect(settings.database_url)
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            yield
        finally:
            await connection.close()
        return
    path = Path(f"{settings.sqlite_path}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
