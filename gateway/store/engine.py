"""Build the Piccolo engine from settings and bind every table to it."""

from __future__ import annotations

from typing import Any

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from gateway.settings import Settings
from gateway.store.piccolo_app import APP_CONFIG

# PostgreSQL answering, but not letting this process in. The first three need the operator (a wrong
# DATABASE_URL); the others pass on their own (a server starting up or going away, a full connection table).
REFUSED = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
)
BUSY = (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.PostgresConnectionError)


def refusal(error: BaseException) -> str | None:
    """What to tell an operator when `error` is PostgreSQL refusing this process, else None."""
    return str(error) if isinstance(error, REFUSED + BUSY) else None


def make_engine(settings: Settings) -> Engine:
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.database_url})
    from pathlib import Path

    Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    return SQLiteEngine(path=settings.sqlite_path)


def bind(engine: Engine) -> None:
    """Point every table of the Piccolo app at `engine` (tests run the same code on SQLite and PostgreSQL)."""
    for table in APP_CONFIG.table_classes:
        table._meta.db = engine


def write_transaction(engine: Engine) -> Any:
    """A transaction that reads and then writes. On SQLite it takes the write lock at BEGIN (IMMEDIATE),
    waiting its turn: a deferred one that reads first cannot wait for the lock when it comes to write
    (SQLite answers "database is locked" at once) while a gateway process is writing its usage figures."""
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


async def start(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=10)


async def stop(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
