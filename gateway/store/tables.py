"""Piccolo tables: what the management plane writes and the data plane's snapshot reads."""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from gateway.store.accounts import Account


class Consumer(Table, tablename="unigate_consumer"):
    """An application that calls unified APIs."""

    id = Serial(primary_key=True)
    name = Varchar(length=100, unique=True)
    description = Text(default="")
    # resource ("stockouts", "orders", "logistics") -> connection name; "*" is the fallback.
    default_connections = JSON(default={})
    # Connection names it may use besides the open ones; ["*"] = every connection (gateway/runtime.py).
    connections = JSON(default=[])
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    # The developer account that registered it in the portal; None for apps made by an admin or the CLI.
    owner = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.set_null)


class ApiKey(Table, tablename="unigate_api_key"):
    """An API key: only its SHA-256 hash and a short prefix for finding it are stored."""

    id = Serial(primary_key=True)
    consumer = ForeignKey(references=Consumer, null=False)
    name = Varchar(length=100, default="")
    prefix = Varchar(length=16, index=True)
    key_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class Connection(Table, tablename="unigate_connection"):
    """An API producer: one configured backend instance; credentials are Fernet-encrypted."""

    id = Serial(primary_key=True)
    name = Varchar(length=100, unique=True)
    system = Varchar(length=40)
    base_url = Varchar(length=500)
    credentials = Text()  # Fernet token of a JSON object; never clear text
    options = JSON(default={})  # defaults (shop, warehouse) and backend limits
    # Every application may use it (self-service); otherwise only those it is granted to.
    open = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class IdempotencyRecord(Table, tablename="unigate_idempotency"):
    """The first answer to a write, replayed for the same consumer + Idempotency-Key."""

    id = Serial(primary_key=True)
    scope_key = Varchar(length=300, unique=True)  # "<consumer id>:<idempotency key>"
    request_hash = Varchar(length=64)
    status_code = Integer(default=0)  # 0 while the first request is still in flight
    response_body = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class ConfigVersion(Table, tablename="unigate_config_version"):
    """One row; bumped on every config change so every node rebuilds its snapshot."""

    id = Serial(primary_key=True)
    version = Integer(default=0)
    updated_at = Timestamptz(default=TimestamptzNow())


TABLES: list[type[Table]] = [Consumer, ApiKey, Connection, IdempotencyRecord, ConfigVersion]
