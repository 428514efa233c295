"""A change made through the portal's services commits with its audit record or not at all, on both
engines: with the audit log unwritable, nothing is changed unrecorded."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from piccolo.engine.base import Engine

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.errors import NotFound
from gateway.store.accounts import AuditEvent
from gateway.store.crypto import Vault
from portal.services import accounts, apps, connections, plans
from portal.services.principal import CLI
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate
from tests.portal.conftest import PASSWORD, unique

# What an insert into a table that is not there raises, per engine.
AUDIT_FAILED = (sqlite3.OperationalError, asyncpg.UndefinedTableError)


@pytest.fixture(scope="module")
async def engine(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    env = gateway_env(tmp_path_factory.mktemp("audit-store"), DATABASE_URL=module_database_url)
    migrate(env)
    async with bound_store(env) as engine:
        yield engine


async def test_a_change_whose_audit_record_fails_is_not_made(engine: Engine) -> None:
    app = await apps.create_app(CLI, unique("shop"))
    key, _ = await apps.create_app_key(CLI, app["id"], name="ci")
    before = (await apps.list_apps(CLI, everyone=True), await apps.list_app_keys(CLI, app["id"]))
    plans_before = await plans.list_plans()
    newcomer = unique("dev")
    vault = Vault(SECRET_KEY)
    express = dict(name=unique("express"), system="kuaidi100", base_url="http://127.0.0.1:9")
    await connections.save_connection(CLI, vault, **express, credentials=dict(kd100_sim.DEFAULT_CREDENTIALS))
    connections_before = await connections.list_connections(vault)

    # The audit table gone for a moment: every record of a change fails.
    await AuditEvent.raw("ALTER TABLE unigate_audit_event RENAME TO unigate_audit_event_away")
    try:
        with pytest.raises(AUDIT_FAILED):
            await apps.create_app(CLI, unique("other"))
        with pytest.raises(AUDIT_FAILED):
            await apps.rotate_app_key(CLI, app["id"], key["id"], overlap=timedelta(0))
        with pytest.raises(AUDIT_FAILED):
            await apps.set_app_active(CLI, app["id"], False)
        with pytest.raises(AUDIT_FAILED):
            await accounts.signup(newcomer, PASSWORD, approval_required=False)
        with pytest.raises(AUDIT_FAILED):
            await plans.create_plan(CLI, unique("plan"), {"rate_limits": {"per_second": 1}})
        with pytest.raises(AUDIT_FAILED):
            await connections.save_connection(
                CLI, vault, **{**express, "base_url": express["base_url"] + "/moved"}, credentials={}
            )
        with pytest.raises(AUDIT_FAILED):
            await connections.delete_connection(CLI, vault, express["name"])
    finally:
        await AuditEvent.raw("ALTER TABLE unigate_audit_event_away RENAME TO unigate_audit_event")

    assert (await apps.list_apps(CLI, everyone=True), await apps.list_app_keys(CLI, app["id"])) == before
    assert await plans.list_plans() == plans_before
    assert await connections.list_connections(vault) == connections_before
    with pytest.raises(NotFound):
        await accounts.find_account(newcomer)
