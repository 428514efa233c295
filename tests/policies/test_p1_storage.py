"""Policy configuration on both engines: what the service functions save is what the snapshot serves,
and secrets (OAuth client secrets, signing keys) never reach the database in clear."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec
import pytest
from piccolo.engine.base import Engine

from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.policy_tables import OAuthClient, SigningKey
from gateway.store.snapshot import load_snapshot
from gateway.store.usage_tables import RequestSample
from policies.metering import Sample, UsageRecorder
from policies.oauth import signing_key
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate


@pytest.fixture(scope="module")
def migrated(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("p1-store"), DATABASE_URL=module_database_url)
    migrate(env)
    return env


@pytest.fixture
async def engine(migrated: dict[str, str]) -> AsyncIterator[Engine]:
    """Every table bound to the migrated database for one test, then bound back as it was."""
    async with bound_store(migrated) as engine:
        yield engine


async def test_plans_subscriptions_and_rules_reach_the_snapshot(engine: Engine) -> None:
    vault = Vault(SECRET_KEY)
    tag = uuid.uuid4().hex[:8]
    consumer = await manage.create_consumer(f"app-{tag}", {})
    plan = f"gold-{tag}"
    await policy_manage.create_plan(
        plan, {"rate_limits": {"per_second": 5}, "quotas": {"per_month": 1000}, "priority": "high"}
    )
    made = await policy_manage.subscribe(consumer, "orders", plan)
    await policy_manage.set_consumer_policy(
        consumer, overrides={"quotas": {"per_month": 5000}}, ip_deny=["192.0.2.0/24"]
    )
    await policy_manage.set_api_policy(
        "orders", cors={"allow_origins": ["https://a.example"]}, max_body_bytes=4096
    )

    snapshot = await load_snapshot(vault)
    sub = snapshot.subscriptions[(consumer, "orders")]
    assert (sub.id, sub.status) == (made["id"], "active")
    assert snapshot.plans[sub.plan_id].config["quotas"]["per_month"] == 1000
    rules = snapshot.consumer_policies[consumer]
    assert rules.overrides == {"quotas": {"per_month": 5000}} and rules.ip_deny == ("192.0.2.0/24",)
    assert snapshot.api_policies["orders"].max_body_bytes == 4096
    assert snapshot.api_policies["orders"].cors["allow_origins"] == ["https://a.example"]

    await policy_manage.update_plan(plan, config={"rate_limits": {"per_second": 9}})
    await policy_manage.set_subscription_status(made["id"], "suspended")
    later = await load_snapshot(vault)
    assert later.version > snapshot.version
    assert later.plans[sub.plan_id].config["rate_limits"]["per_second"] == 9
    assert later.subscriptions[(consumer, "orders")].status == "suspended"
    await policy_manage.cancel_subscription(made["id"])
    assert (consumer, "orders") not in (await load_snapshot(vault)).subscriptions
    await policy_manage.delete_plan(plan)


async def test_oauth_secrets_and_signing_keys_are_never_stored_in_clear(engine: Engine) -> None:
    vault = Vault(SECRET_KEY)
    consumer = await manage.create_consumer(f"oauth-{uuid.uuid4().hex[:8]}", {})
    issued = await policy_manage.create_oauth_client(vault, consumer, ["orders:read", "pii:read"])
    row = await OAuthClient.select().where(OAuthClient.client_id == issued.client_id).first()
    assert row is not None and issued.client_secret not in json.dumps(row, default=str)

    snapshot = await load_snapshot(vault)
    assert snapshot.oauth_clients[issued.client_id].scopes == frozenset({"orders:read", "pii:read"})
    key = snapshot.signing_keys[-1]
    assert "d" in key.private_jwk and "d" not in key.public_jwk  # the private exponent, opened by the vault
    stored = await SigningKey.select().where(SigningKey.kid == key.kid).first()
    assert stored is not None and key.private_jwk["d"] not in json.dumps(stored, default=str)

    # A rotation publishes the next key beside the current one; it signs only once active.
    kid = (await policy_manage.rotate_signing_key(vault, token_ttl=timedelta(minutes=15))).kid
    rotated = await load_snapshot(vault)
    assert {key.kid, kid} <= {k.kid for k in rotated.signing_keys}
    current = signing_key(rotated, rotated.signing_keys[-1].activates_at - timedelta(seconds=1))
    assert current is not None and current.kid != kid
    assert signing_key(rotated, rotated.signing_keys[-1].activates_at) == rotated.signing_keys[-1]

    await policy_manage.revoke_oauth_client(issued.client_id)
    assert issued.client_id not in (await load_snapshot(vault)).oauth_clients


async def test_request_samples_are_stored_masked_whatever_the_caller_sent(engine: Engine) -> None:
    """A caller's own headers and query go into the sample: an over-long X-Request-ID or X-Connection is
    cut to its column (else the batch fails on PostgreSQL and every sample in it is lost), and a number
    written the ways people write it is masked."""
    consumer = await manage.create_consumer(f"app-{uuid.uuid4().hex[:8]}", {})
    recorder = UsageRecorder("Asia/Shanghai", 10)
    odd = Sample(
        consumer, "logistics", "c" * 300, "GET", "/v1/stockouts/8613812345678",
        "carrier=shunfeng&phone=%2B8613812345678&note=138%201234%205678",
        404, "not_found", "no stockout '+86 138-1234-5678'", 1.5, "r" * 500, time.time(),
    )  # fmt: skip
    plain = msgspec.structs.replace(odd, connection="wdt", request_id="plain", query="limit=1")
    recorder.sample(odd)
    recorder.sample(plain)
    await recorder.flush()
    rows = await RequestSample.select().where(RequestSample.consumer == consumer).order_by(RequestSample.id)
    assert [row["request_id"] for row in rows] == ["r" * 64, "plain"]
    assert rows[0]["connection"] == "c" * 100
    assert "12345678" not in json.dumps(rows, default=str)
    assert rows[0]["path"] == "/v1/stockouts/86138****5678"
    assert rows[0]["query"] == "carrier=shunfeng&phone=+86*******5678&note=138 **** 5678"
    assert rows[0]["detail"] == "no stockout '+86 138-****-5678'"
