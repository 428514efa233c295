"""Build the Piccolo engine from settings and bind every table to it."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

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
    # Made readable by its owner only, before SQLite would make it with the umask's mode: it holds password
    # hashes, sealed credentials and request samples. SQLite gives its -wal and -shm files the same mode.
    os.close(os.open(settings.sqlite_path, os.O_RDWR | os.O_CREAT, 0o600))
    return SQLiteEngine(path=settings.sqlite_path)


def bind(engine: Engine) -> None:
    """Point every table of the Piccolo app at `engine` (tests run the same code on SQLite and PostgreSQL)."""
    for table in APP_CONFIG.table_classes:
        table._meta.db = engine


# What the write transaction in progress runs once it has committed (see after_commit).
_after_commit: ContextVar[list[Callable[[], Awaitable[None]]] | None] = ContextVar(
    "after_commit", default=None
)


@contextlib.asynccontextmanager
async def write_transaction(engine: Engine) -> AsyncIterator[None]:
    """A transaction that reads and then writes. On SQLite it takes the write lock at BEGIN (IMMEDIATE),
    waiting its turn: a deferred one that reads first cannot wait for the lock when it comes to write
    (SQLite answers "database is locked" at once) while a gateway process is writing its usage figures.
    Inside another one it is part of that one. What `after_commit` is given runs once it commits."""
    if engine.current_transaction.get() is not None:
        yield
        return
    callbacks: list[Callable[[], Awaitable[None]]] = []
    token = _after_commit.set(callbacks)
    try:
        if isinstance(engine, SQLiteEngine):
            async with engine.transaction(transaction_type=TransactionType.immediate):
                yield
        else:
            async with engine.transaction():
                yield
    finally:
        _after_commit.reset(token)
    for callback in callbacks:
        await callback()


def after_commit(callback: Callable[[], Awaitable[None]]) -> bool:
    """Run `callback` once the write transaction in progress has committed, and say so; False when there
    is none, for the caller to run it now. Telling other nodes of a change before it commits sends them to
    read what they cannot see yet."""
    callbacks = _after_commit.get()
    if callbacks is None:
        return False
    callbacks.append(callback)
    return True


P = ParamSpec("P")
R = TypeVar("R")


def atomic(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A service function that checks, then writes, then moves the config version, as one write transaction
    (part of its caller's, if any): a check cannot go stale before the write it allows, two edits of one
    row cannot lose one, and a change never commits without the version that makes the nodes load it.

    On PostgreSQL two such functions can still both find a name free and both insert it, or one delete a
    row the other is pointing a new one at; the second then breaks a unique or foreign key constraint, and
    is run once more, for its check to say what it finds (a 409 or 400 naming the field, not a 500).
    SQLite's write transactions run one at a time, so its checks are never stale."""

    @functools.wraps(function)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = APP_CONFIG.table_classes[0]._meta.db
        outermost = engine.current_transaction.get() is None
        try:
            async with write_transaction(engine):
                return await function(*args, **kwargs)
        except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError):
            if not outermost:  # the whole transaction is spoiled: the one that began it decides
                raise
        async with write_transaction(engine):
            return await function(*args, **kwargs)

    return run


async def hold_row(table: type[Table], row_id: int) -> None:
    """Inside a write transaction, keep other writers off one row until the commit, before reading it to
    change it: PostgreSQL's read committed would otherwise let two edits read the same row and the last
    undo the first. SQLite's write transaction already holds the whole database."""
    if isinstance(table._meta.db, PostgresEngine):
        await table.select(table._meta.primary_key).where(table._meta.primary_key == row_id).lock_rows()


@contextlib.asynccontextmanager
async def read_transaction(engine: Engine) -> AsyncIterator[None]:
    """Several reads that see one moment of the database, whatever commits meanwhile. SQLite's reads
    inside a transaction hold its shared lock to the end; PostgreSQL's default (read committed) gives
    each statement its own moment, so the transaction asks for repeatable read."""
    if engine.current_transaction.get() is not None:  # already inside one: its moment is the one to see
        yield
        return
    async with engine.transaction() as transaction:
        if isinstance(engine, PostgresEngine):
            await transaction.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


async def start(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=10)


async def stop(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
