"""Admins changing the same thing at once, on both engines: every change lands, none is lost to another
read before it (two portal tabs granting connections to one app, two operators running the CLI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.schemes import service as scheme_service
from gateway.store import manage
from gateway.store.crypto import Vault
from gateway.store.policy_manage import create_plan, delete_plan, set_consumer_policy, subscribe
from gateway.store.snapshot import current_version
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate

NAMES = [f"wdt-{n}" for n in range(6)]


async def test_grants_made_at_once_all_land(database_url: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    vault = Vault(SECRET_KEY)
    async with bound_store(env):
        for name in NAMES:
            await manage.put_connection(
                vault, name=name, system="wangdiantong", base_url="http://127.0.0.1:9",
                credentials={"sid": "s", "appkey": "k", "appsecret": "x"},
            )  # fmt: skip
        app = await manage.create_consumer("shop", by_admin=True)
        before = await current_version()

        await asyncio.gather(*(manage.grant_connections(app, [name]) for name in NAMES))
        assert await manage.granted_connections(app) == NAMES

        await asyncio.gather(*(manage.revoke_connections(app, [name]) for name in NAMES[:3]))
        assert await manage.granted_connections(app) == NAMES[3:]
        # Each change moved the version, so every node loads each one.
        assert await current_version() == before + len(NAMES) + 3


async def test_the_same_name_created_twice_at_once_is_one_created_and_one_refused(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        outcomes = await asyncio.gather(
            *(manage.create_consumer("twin", by_admin=True) for _ in range(4)), return_exceptions=True
        )
        await create_plan("basic", {})
        consumer = next(outcome for outcome in outcomes if isinstance(outcome, int))
        rules = await asyncio.gather(
            set_consumer_policy(consumer, ip_allow=["10.0.0.0/8"]),
            set_consumer_policy(consumer, ip_deny=["10.9.0.0/16"]),
            subscribe(consumer, "orders", "basic"),
            subscribe(consumer, "orders", "basic"),
            return_exceptions=True,
        )
    refused = [outcome for outcome in outcomes if not isinstance(outcome, int)]
    assert len(refused) == 3, outcomes
    assert all(getattr(error, "code", None) == "conflict" for error in refused), refused
    assert rules[:2] == [None, None], rules
    assert sorted(type(outcome).__name__ for outcome in rules[2:]) == ["Conflict", "dict"], rules


async def test_a_plan_deleted_while_subscribed_to_is_one_or_the_other_never_a_500(
    database_url: str, tmp_path: Path
) -> None:
    """Each change checks, then writes; on PostgreSQL the other's write can come between, and the
    database's foreign key then refuses the second (a subscription to a deleted plan, or the plan of a new
    subscription deleted). That refusal is run again for the change's own check to say what it finds."""
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        consumers = [await manage.create_consumer(f"racer-{n}", by_admin=True) for n in range(8)]
        for n, consumer in enumerate(consumers):
            await create_plan(f"brief-{n}", {})
            deleted, subscribed = await asyncio.gather(
                delete_plan(f"brief-{n}"), subscribe(consumer, "orders", f"brief-{n}"), return_exceptions=True
            )
            outcome = (type(deleted).__name__, type(subscribed).__name__)
            # Deleted first: the subscription names no plan. Subscribed first: the plan is in use.
            assert outcome in {("NoneType", "InvalidParameter"), ("Conflict", "dict")}, (deleted, subscribed)


async def test_a_scheme_created_twice_at_once_is_one_created_and_one_refused(
    database_url: str, tmp_path: Path
) -> None:
    """Two admins creating the same scheme name at once: the second is told the name is taken (it used to
    replace the first's scheme, mapping and all, on PostgreSQL)."""
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        for name in ("wdt-a", "wdt-b"):
            await manage.put_connection(
                Vault(SECRET_KEY), name=name, system="wangdiantong", base_url="http://127.0.0.1:9",
                credentials={"sid": "s", "appkey": "k", "appsecret": "x"},
            )  # fmt: skip
        definitions = [
            {
                "source": {"connection": "wdt-a", "operation": "stockout_order_query_trade"},
                "target": {"connection": "wdt-b", "operation": "trade_push"},
                "schedule": schedule,
            }
            for schedule in ("every 60s", "every 90s")
        ]
        outcomes = await asyncio.gather(
            *(scheme_service.create_scheme("twin", d) for d in definitions), return_exceptions=True
        )
        kept = await scheme_service.get_scheme("twin")
    created = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, dict)]
    refused = [type(outcome).__name__ for outcome in outcomes if not isinstance(outcome, dict)]
    assert len(created) == 1 and refused == ["Conflict"], outcomes
    assert kept["definition"]["schedule"] == definitions[created[0]]["schedule"]  # the first stays as made
