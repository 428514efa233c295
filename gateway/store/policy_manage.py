"""Changes to policy configuration: plans, subscriptions, consumer rules, OAuth clients, keys, API rules.

Each validates with the policy's own schema first (InvalidParameter names the field), then writes
and bumps the config version, so every node's snapshot follows within a second. The CLI and the
portal both call these; neither writes the tables directly.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from gateway.errors import Conflict, InvalidParameter, NotFound
from gateway.store.crypto import Vault
from gateway.store.engine import atomic, hold_row
from gateway.store.policy_tables import ApiPolicy, ConsumerPolicy, OAuthClient, Plan, SigningKey, Subscription
from gateway.store.reseal import require_database_key
from gateway.store.snapshot import bump_version
from gateway.store.tables import Consumer
from policies.authorize import PlanConfig, parse_overrides, parse_plan, plan_dict
from policies.body_limit import check_max_body_bytes
from policies.chain import APIS
from policies.cors import parse_cors
from policies.ipfilter import parse_networks
from policies.oauth import SCOPES, hash_secret, new_signing_key

STATUSES = ("pending", "active", "suspended")
CLIENT_PREFIX = "ugc_"
# A new signing key is published this long before it signs: every node has reloaded by then, and so
# has any verifier that caches /.well-known/jwks.json for its max-age (60 s).
KEY_ACTIVATION_DELAY = timedelta(seconds=60)
# The longest an old client secret may keep working after a rotation, and a new key may wait to sign.
MAX_SECRET_OVERLAP = timedelta(days=30)
MAX_ACTIVATION_DELAY = timedelta(days=1)


# -- plans -------------------------------------------------------------------------------------


@atomic
async def create_plan(
    name: str, config: Mapping[str, Any], *, description: str = "", requires_approval: bool = False
) -> int:
    if not name.strip():
        raise InvalidParameter("name", "a plan needs a name")
    parsed = parse_plan(config)
    if await Plan.exists().where(Plan.name == name):
        raise Conflict(f"a plan named {name!r} already exists", field="name")
    rows = await Plan.insert(
        Plan(
            name=name,
            description=description,
            config=plan_dict(parsed),
            requires_approval=requires_approval,
        )
    )
    await bump_version()
    return int(rows[0]["id"])


@atomic
async def update_plan(
    name: str,
    *,
    config: Mapping[str, Any] | None = None,
    description: str | None = None,
    requires_approval: bool | None = None,
) -> None:
    """Change a plan; every subscription under it follows at once (counters are kept)."""
    plan_id = await _plan_id(name)
    values: dict[Any, Any] = {Plan.updated_at: datetime.now(UTC)}
    if config is not None:
        values[Plan.config] = plan_dict(parse_plan(config))
    if description is not None:
        values[Plan.description] = description
    if requires_approval is not None:
        values[Plan.requires_approval] = requires_approval
    await Plan.update(values).where(Plan.id == plan_id)
    await bump_version()


@atomic
async def ensure_plan(name: str, config: Mapping[str, Any], *, description: str = "") -> int:
    """The plan's id, creating it with `config` if it does not exist (seeding; idempotent)."""
    row = await Plan.select(Plan.id).where(Plan.name == name).first()
    if row is not None:
        return int(row["id"])
    return await create_plan(name, config, description=description)


@atomic
async def delete_plan(name: str) -> None:
    plan_id = await _plan_id(name)
    if await Subscription.exists().where(Subscription.plan == plan_id):
        raise Conflict(f"subscriptions use the plan {name!r}: move them to another plan first", field="name")
    await Plan.delete().where(Plan.id == plan_id)
    await bump_version()


async def list_plans() -> list[dict[str, Any]]:
    rows = await Plan.select().order_by(Plan.name)
    for row in rows:
        row["config"] = _json(row["config"])
    return list(rows)


async def _plan_id(name: str) -> int:
    row = await Plan.select(Plan.id).where(Plan.name == name).first()
    if row is None:
        raise NotFound(f"no plan named {name!r}")
    return int(row["id"])


# -- subscriptions -----------------------------------------------------------------------------


@atomic
async def subscribe(consumer: int, api: str, plan: str) -> dict[str, Any]:
    """Subscribe a consumer to an API under a plan: active at once, or pending if the plan wants approval."""
    if api not in APIS:
        raise InvalidParameter("api", f"unknown API {api!r}; known: {', '.join(APIS)}")
    row = await Plan.select().where(Plan.name == plan).first()
    if row is None:
        raise InvalidParameter("plan", f"no plan named {plan!r}")
    _check_plan_covers(row, api)
    if not await Consumer.exists().where(Consumer.id == consumer):
        raise NotFound(f"no consumer with id {consumer}")
    await hold_row(Consumer, consumer)  # one subscription per API, also when two are asked for at once
    if await Subscription.exists().where((Subscription.consumer == consumer) & (Subscription.api == api)):
        # Said to developers too, who cannot move a subscription: no advice that only an admin can follow.
        raise Conflict(f"this application is already subscribed to {api}", field="api")
    status = "pending" if row["requires_approval"] else "active"
    rows = await Subscription.insert(
        Subscription(
            consumer=consumer,
            api=api,
            plan=row["id"],
            status=status,
            approved_at=None if status == "pending" else datetime.now(UTC),
        )
    )
    await bump_version()
    return {"id": int(rows[0]["id"]), "status": status}


@atomic
async def ensure_subscriptions(consumer: int, plan: str, apis: Iterable[str] = APIS) -> None:
    """Subscribe to each API not yet subscribed (seeding; idempotent)."""
    for api in apis:
        if not await Subscription.exists().where(
            (Subscription.consumer == consumer) & (Subscription.api == api)
        ):
            await subscribe(consumer, api, plan)


@atomic
async def change_subscription_plan(subscription: int, plan: str) -> None:
    sub = await _subscription(subscription)
    row = await Plan.select().where(Plan.name == plan).first()
    if row is None:
        raise InvalidParameter("plan", f"no plan named {plan!r}")
    _check_plan_covers(row, sub["api"])
    await Subscription.update({Subscription.plan: row["id"]}).where(Subscription.id == subscription)
    await bump_version()


@atomic
async def set_subscription_status(subscription: int, status: str) -> None:
    """`active` approves a pending subscription or resumes a suspended one; `suspended` stops it."""
    if status not in STATUSES:
        raise InvalidParameter("status", f"unknown status {status!r}; known: {', '.join(STATUSES)}")
    sub = await _subscription(subscription)
    values: dict[Any, Any] = {Subscription.status: status}
    if status == "active" and sub["approved_at"] is None:
        values[Subscription.approved_at] = datetime.now(UTC)
    await Subscription.update(values).where(Subscription.id == subscription)
    await bump_version()


async def approve_subscription(subscription: int) -> None:
    await set_subscription_status(subscription, "active")


@atomic
async def cancel_subscription(subscription: int) -> None:
    await _subscription(subscription)
    await Subscription.delete().where(Subscription.id == subscription)
    await bump_version()


async def list_subscriptions(consumer: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
    query = Subscription.select(
        Subscription.id,
        Subscription.consumer,
        Subscription.consumer.name.as_alias("consumer_name"),
        Subscription.api,
        Subscription.plan.name.as_alias("plan"),
        Subscription.status,
        Subscription.created_at,
        Subscription.approved_at,
    ).order_by(Subscription.id)
    if consumer is not None:
        query = query.where(Subscription.consumer == consumer)
    if status is not None:
        query = query.where(Subscription.status == status)
    return list(await query)


async def _subscription(subscription: int) -> dict[str, Any]:
    row = await Subscription.select().where(Subscription.id == subscription).first()
    if row is None:
        raise NotFound(f"no subscription with id {subscription}")
    return dict(row)


def _check_plan_covers(plan: Mapping[str, Any], api: str) -> None:
    config = msgspec.convert(_json(plan["config"]), PlanConfig)
    if not any(entry == api or entry.startswith(f"{api}:") for entry in config.apis):
        raise InvalidParameter("plan", f"the plan {plan['name']!r} does not include the {api} API")


# -- per-consumer rules: overrides and IP lists ------------------------------------------------


@atomic
async def set_consumer_policy(
    consumer: int,
    *,
    overrides: Mapping[str, Any] | None = None,
    ip_allow: Iterable[str] | None = None,
    ip_deny: Iterable[str] | None = None,
) -> None:
    """Replace the parts given (None keeps a part as it is; an empty value clears it)."""
    values: dict[Any, Any] = {ConsumerPolicy.updated_at: datetime.now(UTC)}
    if overrides is not None:
        values[ConsumerPolicy.overrides] = parse_overrides(overrides)
    if ip_allow is not None:
        values[ConsumerPolicy.ip_allow] = parse_networks(ip_allow, "ip_allow")
    if ip_deny is not None:
        values[ConsumerPolicy.ip_deny] = parse_networks(ip_deny, "ip_deny")
    if not await Consumer.exists().where(Consumer.id == consumer):
        raise NotFound(f"no consumer with id {consumer}")
    if await ConsumerPolicy.exists().where(ConsumerPolicy.consumer == consumer):
        await ConsumerPolicy.update(values).where(ConsumerPolicy.consumer == consumer)
    else:
        await ConsumerPolicy.insert(
            ConsumerPolicy(consumer=consumer, **{c._meta.name: v for c, v in values.items()})
        )
    await bump_version()


CONSUMER_RULES = ("overrides", "ip_allow", "ip_deny")  # the parts of a consumer's rules


def consumer_rules(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A consumer's rules, decoded from its ConsumerPolicy row; None, no row: it has none."""
    if row is None:
        return {"overrides": {}, "ip_allow": [], "ip_deny": []}
    return {key: _json(row[key]) for key in CONSUMER_RULES}


async def get_consumer_policy(consumer: int) -> dict[str, Any]:
    row = await ConsumerPolicy.select().where(ConsumerPolicy.consumer == consumer).first()
    return {"consumer": consumer} | consumer_rules(row)


# -- OAuth2 clients ----------------------------------------------------------------------------


class IssuedClient(msgspec.Struct, frozen=True):
    client_id: str
    client_secret: str  # shown once, never stored


def _scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    for n, scope in enumerate(chosen):
        if scope not in SCOPES:
            raise InvalidParameter(
                f"scopes[{n}]", f"unknown scope {scope!r}; known: {', '.join(sorted(SCOPES))}"
            )
    if not chosen:
        raise InvalidParameter("scopes", "give the client at least one scope, like orders:read")
    return chosen


@atomic
async def create_oauth_client(
    vault: Vault, consumer: int, scopes: Iterable[str], name: str = "", *, first_key: KeyPair | None = None
) -> IssuedClient:
    """A client-credentials client for a consumer; a signing key is made if there is none yet (`first_key`,
    from `first_signing_key()` before the transaction, or made here)."""
    chosen = _scopes(scopes)
    if not await Consumer.exists().where(Consumer.id == consumer):
        raise NotFound(f"no consumer with id {consumer}")
    await ensure_signing_key(vault, first_key)
    client_id = CLIENT_PREFIX + secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    await OAuthClient.insert(
        OAuthClient(
            consumer=consumer, client_id=client_id, name=name, secret_hash=hash_secret(secret), scopes=chosen
        )
    )
    await bump_version()
    return IssuedClient(client_id, secret)


@atomic
async def rotate_oauth_client_secret(client_id: str, overlap: timedelta = timedelta(0)) -> IssuedClient:
    """A new secret; the old one keeps working for `overlap` (0: stops at once)."""
    check_secret_overlap(overlap)
    row = await _live_client(client_id)
    secret = secrets.token_urlsafe(32)
    await OAuthClient.update(
        {
            OAuthClient.secret_hash: hash_secret(secret),
            OAuthClient.previous_secret_hash: row["secret_hash"] if overlap > timedelta(0) else None,
            OAuthClient.previous_expires_at: datetime.now(UTC) + overlap if overlap > timedelta(0) else None,
        }
    ).where(OAuthClient.id == row["id"])
    await bump_version()
    return IssuedClient(client_id, secret)


@atomic
async def set_oauth_client_scopes(client_id: str, scopes: Iterable[str]) -> None:
    """Tokens already issued lose removed scopes at once (they are checked against the client)."""
    row = await _live_client(client_id)
    await OAuthClient.update({OAuthClient.scopes: _scopes(scopes)}).where(OAuthClient.id == row["id"])
    await bump_version()


@atomic
async def revoke_oauth_client(client_id: str) -> None:
    """The client can get no new token, and the tokens it holds stop working."""
    row = await _live_client(client_id)
    await OAuthClient.update({OAuthClient.revoked_at: datetime.now(UTC)}).where(OAuthClient.id == row["id"])
    await bump_version()


async def list_oauth_clients(consumer: int | None = None) -> list[dict[str, Any]]:
    query = OAuthClient.select(
        OAuthClient.id,
        OAuthClient.client_id,
        OAuthClient.consumer,
        OAuthClient.consumer.name.as_alias("consumer_name"),
        OAuthClient.name,
        OAuthClient.scopes,
        OAuthClient.created_at,
        OAuthClient.revoked_at,
    ).order_by(OAuthClient.id)
    if consumer is not None:
        query = query.where(OAuthClient.consumer == consumer)
    rows = await query
    for row in rows:
        row["scopes"] = _json(row["scopes"])
    return list(rows)


async def _live_client(client_id: str) -> dict[str, Any]:
    row = await OAuthClient.select().where(OAuthClient.client_id == client_id).first()
    if row is None or row["revoked_at"] is not None:
        raise NotFound(f"no active OAuth client {client_id!r}")
    return dict(row)


# -- JWT signing keys --------------------------------------------------------------------------


KeyPair = tuple[str, dict[str, Any], dict[str, Any]]  # (kid, private JWK, public JWK)


async def make_signing_key() -> KeyPair:
    """A fresh RSA key pair, made in a thread: 40-200 ms of CPU that neither the requests of the gateway
    (whose admin API makes keys too) nor a write transaction should wait behind. Make it before the
    transaction that stores it."""
    return await asyncio.to_thread(new_signing_key)


async def first_signing_key() -> KeyPair | None:
    """A key pair for `ensure_signing_key` to store, made only while no key is live (None: one is)."""
    if await SigningKey.exists().where(SigningKey.retired_at.is_null()):
        return None
    return await make_signing_key()


class Rotation(msgspec.Struct, frozen=True):
    kid: str  # the key published
    retired: list[str]  # the keys it retired, their tokens all expired


@atomic
async def rotate_signing_key(
    vault: Vault,
    *,
    token_ttl: timedelta,
    activate_in: timedelta = KEY_ACTIVATION_DELAY,
    key: KeyPair | None = None,
) -> Rotation:
    """Publish a new key (`key`, from `make_signing_key()`, or made here) that signs from `activate_in` on;
    retire keys whose tokens have all expired.

    A key is retired once the key after it has been signing for longer than a token lives.
    """
    _check_span("activate_in", activate_in, MAX_ACTIVATION_DELAY)
    now = datetime.now(UTC)
    live = (
        await SigningKey.select(SigningKey.id, SigningKey.kid, SigningKey.activates_at)
        .where(SigningKey.retired_at.is_null())
        .order_by(SigningKey.activates_at)
    )
    retired = [older for older, newer in itertools.pairwise(live) if newer["activates_at"] + token_ttl < now]
    for older in retired:
        await SigningKey.update({SigningKey.retired_at: now}).where(SigningKey.id == older["id"])
    # With no key yet there are no tokens to keep working and nothing signs meanwhile: start at once.
    kid = await _insert_key(vault, key or await make_signing_key(), now + activate_in if live else now)
    await bump_version()
    return Rotation(kid, [str(older["kid"]) for older in retired])


@atomic
async def ensure_signing_key(vault: Vault, key: KeyPair | None = None) -> None:
    """A first key (`key`, from `first_signing_key()`, or made here), active at once, when there is none:
    nothing can be signed before it."""
    if not await SigningKey.exists().where(SigningKey.retired_at.is_null()):
        await _insert_key(vault, key or await make_signing_key(), datetime.now(UTC))
        await bump_version()


@atomic
async def retire_signing_key(kid: str) -> str | None:
    """Stop publishing and accepting a key now (a leaked key): tokens it signed stop working.

    If that leaves no key signing while a newer one waits for its activation (`rotate` then `retire`,
    the way to replace a leaked key), the newer one signs at once: waiting would leave the token
    endpoint unable to sign, and the wait only protects verifiers from a key they have not seen, which
    matters less than a leaked key. Returns the kid brought forward, if any.
    """
    now = datetime.now(UTC)
    updated = (
        await SigningKey.update({SigningKey.retired_at: now})
        .where((SigningKey.kid == kid) & SigningKey.retired_at.is_null())
        .returning(SigningKey.id)
    )
    if not updated:
        raise NotFound(f"no published signing key {kid!r}")
    live = SigningKey.retired_at.is_null()
    waiting = None
    if not await SigningKey.exists().where(live & (SigningKey.activates_at <= now)):
        waiting = (
            await SigningKey.select(SigningKey.id, SigningKey.kid)
            .where(live)
            .order_by(SigningKey.activates_at)
            .first()
        )
        if waiting is not None:
            await SigningKey.update({SigningKey.activates_at: now}).where(SigningKey.id == waiting["id"])
    await bump_version()
    return str(waiting["kid"]) if waiting is not None else None


async def list_signing_keys() -> list[dict[str, Any]]:
    return list(
        await SigningKey.select(
            SigningKey.kid,
            SigningKey.algorithm,
            SigningKey.created_at,
            SigningKey.activates_at,
            SigningKey.retired_at,
        ).order_by(SigningKey.activates_at)
    )


async def _insert_key(vault: Vault, key: KeyPair, activates_at: datetime) -> str:
    kid, private, public = key
    await require_database_key(vault)  # sealed with a key no other node has, none of them could sign with it
    await SigningKey.insert(
        SigningKey(
            kid=kid,
            algorithm=public["alg"],
            private_jwk=vault.seal(private),
            public_jwk=public,
            activates_at=activates_at,
        )
    )
    return kid


# -- per-API rules: CORS and body size ---------------------------------------------------------


@atomic
async def set_api_policy(
    api: str, *, cors: Mapping[str, Any] | None = None, max_body_bytes: int | UnsetType | None = UNSET
) -> None:
    """CORS rules and the body size cap of one unified API (`max_body_bytes=None`: the node's default)."""
    if api not in APIS:
        raise InvalidParameter("api", f"unknown API {api!r}; known: {', '.join(APIS)}")
    values: dict[Any, Any] = {ApiPolicy.updated_at: datetime.now(UTC)}
    if cors is not None:
        values[ApiPolicy.cors] = msgspec.to_builtins(parse_cors(cors))
    if max_body_bytes is not UNSET:
        values[ApiPolicy.max_body_bytes] = check_max_body_bytes(max_body_bytes)
    if await ApiPolicy.exists().where(ApiPolicy.api == api):
        await ApiPolicy.update(values).where(ApiPolicy.api == api)
    else:
        await ApiPolicy.insert(ApiPolicy(api=api, **{c._meta.name: v for c, v in values.items()}))
    await bump_version()


async def list_api_policies() -> list[dict[str, Any]]:
    rows = await ApiPolicy.select().order_by(ApiPolicy.api)
    for row in rows:
        row["cors"] = _json(row["cors"])
    return list(rows)


def check_secret_overlap(overlap: timedelta) -> None:
    """How long an old client secret may keep working: refused before anything is looked up."""
    _check_span("overlap", overlap, MAX_SECRET_OVERLAP)


def _check_span(field: str, span: timedelta, longest: timedelta) -> None:
    if not timedelta(0) <= span <= longest:
        raise InvalidParameter(
            field,
            f"{field}: must be between 0 and {longest.total_seconds():.0f} seconds, "
            f"not {span.total_seconds():g}",
        )


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value
