"""Piccolo tables for policies: plans, subscriptions, consumer rules, OAuth2 clients, signing keys, API rules.

Written by `gateway.store.policy_manage` (which validates with each policy's schema first); read whole
into the config snapshot, never on the request path.
"""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from gateway.store.tables import Consumer


class Plan(Table, tablename="unigate_plan"):
    """Rate limits, quotas, priority class and allowed APIs; `config` is a validated `PlanConfig`."""

    id = Serial(primary_key=True)
    name = Varchar(length=100, unique=True)
    description = Text(default="")
    config = JSON(default={})
    requires_approval = Boolean(default=False)  # new subscriptions wait for an admin
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Subscription(Table, tablename="unigate_subscription"):
    """A consumer's right to call one unified API under a plan; one per (consumer, api)."""

    id = Serial(primary_key=True)
    consumer = ForeignKey(references=Consumer, null=False, on_delete=OnDelete.cascade)
    api = Varchar(length=40)  # "stockouts", "orders", "logistics"
    plan = ForeignKey(references=Plan, null=False, on_delete=OnDelete.restrict)
    status = Varchar(length=20, default="active")  # pending | active | suspended
    created_at = Timestamptz(default=TimestamptzNow())
    approved_at = Timestamptz(null=True, default=None)


class ConsumerPolicy(Table, tablename="unigate_consumer_policy"):
    """Per-consumer rules: overrides of its plans' limits, and IP allow / deny lists (CIDR strings)."""

    id = Serial(primary_key=True)
    consumer = ForeignKey(references=Consumer, null=False, unique=True, on_delete=OnDelete.cascade)
    overrides = JSON(default={})  # a partial PlanConfig: {"rate_limits": {"per_minute": 1000}, ...}
    ip_allow = JSON(default=[])
    ip_deny = JSON(default=[])
    updated_at = Timestamptz(default=TimestamptzNow())


class OAuthClient(Table, tablename="unigate_oauth_client"):
    """An OAuth2 client-credentials client of a consumer; only a SHA-256 of its secret is kept."""

    id = Serial(primary_key=True)
    consumer = ForeignKey(references=Consumer, null=False, on_delete=OnDelete.cascade)
    client_id = Varchar(length=64, unique=True)
    name = Varchar(length=100, default="")
    secret_hash = Varchar(length=64)
    # After a rotation the old secret may keep working until `previous_expires_at` (an overlap window).
    previous_secret_hash = Varchar(length=64, null=True, default=None)
    previous_expires_at = Timestamptz(null=True, default=None)
    scopes = JSON(default=[])
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class SigningKey(Table, tablename="unigate_signing_key"):
    """A JWT signing key pair: the private JWK sealed with the vault, the public JWK in clear for JWKS."""

    id = Serial(primary_key=True)
    kid = Varchar(length=64, unique=True)
    algorithm = Varchar(length=16, default="RS256")
    private_jwk = Text()  # Fernet token of the private JWK's JSON; never clear text
    public_jwk = JSON(default={})
    created_at = Timestamptz(default=TimestamptzNow())
    # Published (in JWKS, accepted) from creation; used to sign only from `activates_at`, so that every
    # node knows the key before any token signed with it reaches one.
    activates_at = Timestamptz(default=TimestamptzNow())
    retired_at = Timestamptz(null=True, default=None)  # neither published nor accepted after this


class ApiPolicy(Table, tablename="unigate_api_policy"):
    """Per unified API: CORS rules and the request body size cap (null: the node's default)."""

    id = Serial(primary_key=True)
    api = Varchar(length=40, unique=True)
    cors = JSON(default={})
    max_body_bytes = Integer(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


POLICY_TABLES: list[type[Table]] = [Plan, Subscription, ConsumerPolicy, OAuthClient, SigningKey, ApiPolicy]
