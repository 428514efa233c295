"""The store on both engines: migrations, config changes, the snapshot, encrypted credentials, idempotency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from piccolo.engine.base import Engine

from gateway.store import manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import load_snapshot
from gateway.store.tables import Connection
from gateway.unified import idempotency
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[Engine]:
    """Tables bound to a freshly migrated database for one test, then bound back as they were."""
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env) as engine:
        yield engine


async def test_migrations_are_repeatable(engine: Engine, database_url: str, tmp_path: Path) -> None:
    migrate(gateway_env(tmp_path, DATABASE_URL=database_url))  # a second run finds nothing to do


async def test_config_changes_reach_the_snapshot(engine: Engine) -> None:
    vault = Vault(SECRET_KEY)
    name = f"app-{uuid.uuid4().hex[:8]}"
    before = (await load_snapshot(vault)).version
    await manage.put_connection(
        vault,
        name=f"wdt-{name}",
        system="wangdiantong",
        base_url="http://127.0.0.1:1",
        credentials={"sid": "s", "appkey": "k", "appsecret": "top-secret-value"},
    )
    consumer = await manage.create_consumer(name, {"*": f"wdt-{name}"}, by_admin=True)
    issued = await manage.create_key(consumer, name="ci")
    snapshot = await load_snapshot(vault)
    assert snapshot.version > before
    entry = snapshot.keys[manage.hash_key(issued.key)]
    assert entry.consumer.name == name
    assert entry.consumer.default_connection("orders") == f"wdt-{name}"
    assert snapshot.connections[f"wdt-{name}"].credentials["appsecret"] == "top-secret-value"

    await manage.revoke_key(issued.id)
    assert manage.hash_key(issued.key) not in (await load_snapshot(vault)).keys


async def test_credentials_and_keys_are_never_stored_in_clear(engine: Engine) -> None:
    vault = Vault(SECRET_KEY)
    name = f"kd-{uuid.uuid4().hex[:8]}"
    await manage.put_connection(
        vault,
        name=name,
        system="kuaidi100",
        base_url="http://127.0.0.1:1",
        credentials={"customer": "C", "key": "kd100-very-secret"},
    )
    row = await Connection.select(Connection.credentials).where(Connection.name == name).first()
    assert row is not None and "kd100-very-secret" not in row["credentials"]
    consumer = await manage.create_consumer(f"app-{name}")
    issued = await manage.create_key(consumer)
    for key_row in await manage.list_keys(consumer):
        assert issued.key not in str(key_row)
        assert issued.key.startswith(key_row["prefix"])


async def test_bad_connections_are_refused_naming_the_field(engine: Engine) -> None:
    from gateway.errors import InvalidParameter

    vault = Vault(SECRET_KEY)
    with pytest.raises(InvalidParameter) as bad_system:
        await manage.put_connection(vault, name="xx", system="sap", base_url="http://h", credentials={})
    assert bad_system.value.field == "system"
    with pytest.raises(InvalidParameter) as bad_url:
        await manage.put_connection(vault, name="xx", system="kuaidi100", base_url="ftp://h", credentials={})
    assert bad_url.value.field == "base_url"
    # Every way in (CLI, portal, demo) calls this, so each is held to what `config apply` can read back.
    with pytest.raises(InvalidParameter) as bad_name:
        await manage.put_connection(
            vault, name="ERP 1", system="kuaidi100", base_url="http://h", credentials={}
        )
    assert bad_name.value.field == "name" and "lowercase" in bad_name.value.detail
    with pytest.raises(InvalidParameter) as missing:
        await manage.put_connection(
            vault, name="kd", system="kuaidi100", base_url="http://h", credentials={"customer": "C"}
        )
    assert missing.value.field == "credentials.key"
    with pytest.raises(InvalidParameter) as bad_consumer:
        await manage.create_consumer("My App")
    assert bad_consumer.value.field == "name"
    with pytest.raises(InvalidParameter) as nowhere:
        await manage.create_consumer(f"app-{uuid.uuid4().hex[:8]}", {"orders": "no-such-connection"})
    assert nowhere.value.field == "default_connections.orders"


async def test_an_idempotency_key_runs_its_work_once(engine: Engine) -> None:
    from gateway.errors import IdempotencyConflict

    calls = 0

    async def work() -> tuple[int, dict[str, int]]:
        nonlocal calls
        calls += 1
        return 201, {"n": calls}

    key = uuid.uuid4().hex
    first = await idempotency.once(scope="1:c:orders", key=key, request={"a": 1}, run=work)
    again = await idempotency.once(scope="1:c:orders", key=key, request={"a": 1}, run=work)
    assert (first.body, first.replayed) == ({"n": 1}, False)
    assert (again.body, again.replayed) == ({"n": 1}, True)
    assert calls == 1
    with pytest.raises(IdempotencyConflict):
        await idempotency.once(scope="1:c:orders", key=key, request={"a": 2}, run=work)
    other_scope = await idempotency.once(scope="2:c:orders", key=key, request={"a": 1}, run=work)
    assert other_scope.body == {"n": 2}
