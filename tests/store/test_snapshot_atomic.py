"""A node's snapshot is one moment of the config, on both engines: loaded while changes commit, it never
pairs the config version of one change with the tables of another (issue 4: "a request sees the old
snapshot or the new one, never a mix"); and a node told of a new version can read it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from gateway.store.crypto import Vault
from gateway.store.engine import write_transaction
from gateway.store.policy_manage import (
    ensure_signing_key,
    list_signing_keys,
    retire_signing_key,
    rotate_signing_key,
)
from gateway.store.snapshot import bump_version, current_version, load_snapshot, publish_versions_with
from gateway.store.tables import Connection
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate

CHANGES = 150


async def test_a_snapshot_loaded_while_changes_commit_is_one_version_whole(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    vault = Vault(SECRET_KEY)
    async with bound_store(env) as engine:
        await Connection.insert(
            Connection(name="moving", system="wangdiantong", base_url="http://127.0.0.1/0",
                       credentials=vault.seal({"sid": "s", "appkey": "k", "appsecret": "x"}))
        )  # fmt: skip

        async def change() -> None:
            # Each change moves the version and, in the same transaction, writes it into a table a load reads
            # after the version: a load that mixes two changes shows two numbers.
            for _ in range(CHANGES):
                async with write_transaction(engine):
                    version = await bump_version()
                    await Connection.update({Connection.base_url: f"http://127.0.0.1/{version}"}).where(
                        Connection.name == "moving"
                    )
                await asyncio.sleep(0)

        writer = asyncio.create_task(change())
        seen: list[tuple[int, str]] = []
        started = time.monotonic()
        while not writer.done() and time.monotonic() - started < 60:
            snapshot = await load_snapshot(vault)
            seen.append((snapshot.version, snapshot.connections["moving"].base_url.rsplit("/", 1)[1]))
        await writer

    mixed = [(version, url) for version, url in seen if url != str(version)]
    assert len(seen) > 20, "the loads did not overlap the changes"
    assert not mixed, f"{len(mixed)} of {len(seen)} snapshots mixed two changes, e.g. {mixed[:3]}"


async def test_a_node_told_of_a_new_version_finds_it_committed(database_url: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    vault = Vault(SECRET_KEY)
    told: asyncio.Queue[int] = asyncio.Queue()
    found: asyncio.Queue[int] = asyncio.Queue()

    async def node() -> None:
        # Another node: told of a version, it reads the current one, as policies/reload.py makes it do.
        while True:
            await told.get()
            await found.put(await current_version())

    async def publish(version: int) -> None:
        await told.put(version)
        heard.append((version, await found.get()))

    heard: list[tuple[int, int]] = []
    async with bound_store(env) as engine:
        listener = asyncio.create_task(node())  # started outside any transaction, as a node's listener is
        publish_versions_with(publish)
        try:
            await ensure_signing_key(vault)  # a change outside a transaction
            await rotate_signing_key(vault, activate_in=timedelta(hours=1), token_ttl=timedelta(minutes=5))
            # Retiring the active key brings the next one forward in one transaction.
            first = (await list_signing_keys())[0]
            assert await retire_signing_key(first["kid"]) is not None
            async with write_transaction(engine):  # and two changes in one transaction
                await bump_version()
                await bump_version()
        finally:
            publish_versions_with(None)
            listener.cancel()

    assert [version for version, _ in heard] == [1, 2, 3, 4, 5]
    assert all(seen >= version for version, seen in heard), f"told before the change was readable: {heard}"
