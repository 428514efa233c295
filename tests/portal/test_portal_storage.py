"""The portal's storage on both engines, SQLite and PostgreSQL: accounts, tokens, the session store,
the audit log, usage reads, and a configuration applied in one transaction or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from piccolo.engine.base import Engine

from gateway.errors import Conflict, InvalidParameter, Unauthorized
from gateway.store import manage
from gateway.store.crypto import Vault
from gateway.store.usage_tables import RequestSample, UsageDaily
from portal.services import accounts, analytics, apps, audit, config, plans
from portal.services.principal import CLI, Principal
from portal.sessions import DatabaseStore
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate
from tests.portal.conftest import PASSWORD, unique


@pytest.fixture(scope="module")
async def engine(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    """Tables bound to a migrated database for this module's tests, then bound back as they were."""
    env = gateway_env(tmp_path_factory.mktemp("portal-store"), DATABASE_URL=module_database_url)
    migrate(env)
    async with bound_store(env) as engine:
        yield engine


async def test_accounts_and_tokens(engine: Engine) -> None:
    name = unique("pg")
    account = await accounts.create_account(CLI, name, PASSWORD, role="admin")
    principal = await accounts.authenticate(name, PASSWORD)
    assert principal.is_admin and principal.account_id == account["id"]
    with pytest.raises(Unauthorized):
        await accounts.authenticate(name, "not the password")
    row, token = await accounts.create_token(principal, "ci")
    assert await accounts.token_principal(token) == Principal(
        account["id"], name, "admin", "", via_token=True
    )
    await accounts.revoke_token(principal, row["id"])
    assert await accounts.token_principal(token) is None
    epoch = await accounts.session_epoch(account["id"])
    await accounts.reset_password(CLI, account["id"], "another long password")
    assert await accounts.session_principal(account["id"], epoch) is None


async def test_the_session_store_keeps_expires_and_forgets(engine: Engine) -> None:
    store = DatabaseStore()
    await store.set("cookie-1", b'{"account": 1}', expires_in=60)
    assert await store.get("cookie-1") == b'{"account": 1}'
    assert 0 < (await store.expires_in("cookie-1") or 0) <= 60
    await store.set("cookie-1", b'{"account": 2}', expires_in=60)  # replaced, not duplicated
    assert await store.get("cookie-1") == b'{"account": 2}'
    await store.set("cookie-2", b"{}", expires_in=1)
    await asyncio.sleep(1.1)
    assert await store.get("cookie-2") is None
    await store.delete("cookie-1")
    assert not await store.exists("cookie-1")


async def test_audit_events_keep_json_before_and_after(engine: Engine) -> None:
    target = unique("thing")
    await audit.record(CLI, "thing.update", target, before={"a": 1}, after={"a": 2, "password": "p"})
    event = next(e for e in await audit.list_events(action="thing.") if e["target"] == target)
    assert event["before"] == {"a": 1} and event["after"] == {"a": 2, "password": "***"}
    assert event["at"] <= datetime.now(UTC)


async def test_usage_is_read_per_day_with_percentiles(engine: Engine) -> None:
    consumer = await manage.create_consumer(unique("usage"))
    today = analytics._today()
    await UsageDaily.insert(
        UsageDaily(
            bucket=f"{consumer}:stockouts:{today}",
            consumer=consumer,
            api="stockouts",
            day=today,
            calls=10,
            errors=1,
            rejected=1,
            le_10=5,
            le_100=4,
            le_1000=1,
        )
    )
    await RequestSample.insert(
        RequestSample(consumer=consumer, api="stockouts", method="GET", path="/v1/stockouts", status=200)
    )
    usage = await analytics.app_usage(CLI, consumer, days=7)
    point = usage["apis"]["stockouts"]["series"][-1]
    assert point["day"] == today.isoformat() and isinstance(date.fromisoformat(point["day"]), date)
    assert (point["calls"], point["errors"], point["rejected"]) == (10, 1, 1)
    assert (point["p50_ms"], point["p95_ms"]) == (10.0, 1000.0)
    assert [r["path"] for r in await analytics.recent_requests(CLI, consumer)] == ["/v1/stockouts"]
    overview = await analytics.overview(days=1)
    assert overview["totals"]["calls"] >= 10


async def test_a_configuration_applies_whole_or_not_at_all(engine: Engine) -> None:
    import yaml

    vault = Vault(SECRET_KEY)
    app = await apps.create_app(CLI, unique("cfg"))
    plan, holder = unique("plan"), unique("holder")
    document = yaml.safe_load(await config.export_yaml(vault))
    document["plans"][plan] = {"config": {"apis": ["orders"]}}
    document["consumers"][holder] = {"subscriptions": {"orders": {"plan": plan}}}
    applied = await config.apply(CLI, yaml.safe_dump(document), {}, vault, comment="a plan in use")
    assert ("plan", plan, "create") in {(c.kind, c.name, c.action) for c in applied.changes}

    # Validation refuses a document before anything is written, naming the field.
    document["consumers"][app["name"]]["subscriptions"] = {"stockouts": {"plan": plan}}
    with pytest.raises(InvalidParameter) as refused:
        await config.apply(CLI, yaml.safe_dump(document), {}, vault)
    assert refused.value.field == f"consumers.{app['name']}.subscriptions.stockouts.plan"

    # A failure while writing (the plan is still used by a consumer the document drops, which is only
    # suspended) rolls back what the same apply had already written.
    del document["consumers"][app["name"]]["subscriptions"]
    document["consumers"][app["name"]]["description"] = "changed"
    del document["plans"][plan], document["consumers"][holder]
    with pytest.raises(Conflict):
        await config.apply(CLI, yaml.safe_dump(document), {}, vault)
    assert (await apps.get_app(CLI, app["id"]))["description"] == ""
    assert plan in {row["name"] for row in await plans.list_plans()}
    assert (await config.list_versions())[0]["id"] == applied.version

    rolled = await config.rollback(CLI, applied.version, {}, vault)
    assert rolled.version > applied.version and not rolled.changes


async def test_an_apply_waits_for_another_process_writing_to_sqlite(
    engine: Engine, module_database_url: str
) -> None:
    """A gateway process writes usage to the same SQLite file; an apply that meets its write lock
    waits for it (a deferred transaction that read first was refused at once: "database is locked")."""
    if not module_database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has row locks; this is about SQLite's one writer")
    import sqlite3
    import threading

    import yaml

    vault = Vault(SECRET_KEY)
    document = yaml.safe_load(await config.export_yaml(vault))
    name = unique("waits")
    document["consumers"][name] = {"description": "applied while another process writes"}
    locked, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        other = sqlite3.connect(module_database_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE unigate_config_snapshot SET comment = comment WHERE id = -1")
        locked.set()
        release.wait(5)
        other.execute("COMMIT")
        other.close()

    writer = threading.Thread(target=other_writer)
    writer.start()
    locked.wait(5)
    asyncio.get_running_loop().call_later(0.3, release.set)
    try:
        applied = await config.apply(CLI, yaml.safe_dump(document), {}, vault, comment="waited")
    finally:
        release.set()
        writer.join(5)
    assert ("consumer", name, "create") in {(c.kind, c.name, c.action) for c in applied.changes}
