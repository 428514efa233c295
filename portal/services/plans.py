"""Plans, subscriptions, OAuth2 clients and per-consumer overrides, over gateway.store.policy_manage:
admins manage plans and approve; developers subscribe their own apps and make their own clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from gateway.errors import InvalidParameter, NotFound
from gateway.store import policy_manage
from gateway.store.crypto import Vault
from gateway.store.engine import atomic
from gateway.store.policy_tables import OAuthClient, Plan
from policies.chain import APIS
from policies.oauth import SCOPES
from portal.services import accounts, apps, audit
from portal.services.principal import Principal


def scopes() -> list[str]:
    return sorted(SCOPES)


def apis() -> list[str]:
    return list(APIS)


async def list_plans() -> list[dict[str, Any]]:
    return await policy_manage.list_plans()


async def get_plan(name: str) -> dict[str, Any]:
    for plan in await list_plans():
        if plan["name"] == name:
            return plan
    raise NotFound(f"no plan named {name!r}")


def _decode_config(config: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(config, dict):
        return config
    try:
        decoded = msgspec.json.decode(config) if config.strip() else {}
    except msgspec.DecodeError:
        raise InvalidParameter("config", "the plan's limits must be a JSON object") from None
    if not isinstance(decoded, dict):
        raise InvalidParameter("config", "the plan's limits must be a JSON object")
    return decoded


@atomic  # each change commits with its audit record (a failed record undoes it): none goes unrecorded
async def create_plan(
    me: Principal,
    name: str,
    config: dict[str, Any] | str,
    *,
    description: str = "",
    requires_approval: bool = False,
) -> dict[str, Any]:
    me.require_admin()
    await policy_manage.create_plan(
        name, _decode_config(config), description=description, requires_approval=requires_approval
    )
    plan = await get_plan(name)
    await audit.record(me, "plan.create", name, after=plan)
    return plan


@atomic
async def update_plan(
    me: Principal,
    name: str,
    *,
    config: dict[str, Any] | str | None = None,
    description: str | None = None,
    requires_approval: bool | None = None,
) -> dict[str, Any]:
    me.require_admin()
    before = await get_plan(name)
    await policy_manage.update_plan(
        name,
        config=None if config is None else _decode_config(config),
        description=description,
        requires_approval=requires_approval,
    )
    after = await get_plan(name)
    await audit.record(me, "plan.update", name, before=before, after=after)
    return after


@atomic
async def delete_plan(me: Principal, name: str) -> None:
    me.require_admin()
    before = await get_plan(name)
    await policy_manage.delete_plan(name)
    await audit.record(me, "plan.delete", name, before=before)


# -- subscriptions -----------------------------------------------------------------------------


async def list_subscriptions(
    me: Principal, *, app_id: int | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """An app's subscriptions, or (for an admin) everyone's; of a status when given, one no subscription
    can have refused (as `accounts.list_accounts` refuses one)."""
    if status:
        accounts.check_one_of("status", status, policy_manage.STATUSES)
    if app_id is not None:
        await apps.get_app(me, app_id)  # ownership
    elif not me.is_admin:
        raise NotFound("choose one of your apps")
    return await policy_manage.list_subscriptions(consumer=app_id, status=status or None)


@atomic
async def subscribe(me: Principal, app_id: int, api: str, plan: str) -> dict[str, Any]:
    """Active at once, or pending until an admin approves, as the plan says."""
    app = await apps.get_app(me, app_id)
    if not await Plan.exists().where(Plan.name == plan):
        raise InvalidParameter("plan", f"no plan named {plan!r}")
    created = await policy_manage.subscribe(app_id, api, plan)
    sub = await _subscription(created["id"])
    await audit.record(me, "subscription.create", f"{app['name']}/{api}", after=sub)
    return sub


async def _subscription(subscription_id: int) -> dict[str, Any]:
    for row in await policy_manage.list_subscriptions():
        if row["id"] == subscription_id:
            return row
    raise NotFound(f"no subscription with id {subscription_id}")


async def _own_subscription(me: Principal, subscription_id: int) -> dict[str, Any]:
    sub = await _subscription(subscription_id)
    await apps.get_app(me, sub["consumer"])  # a developer reaches only their own apps' subscriptions
    return sub


@atomic
async def set_subscription_status(me: Principal, subscription_id: int, status: str) -> dict[str, Any]:
    """Admin: approve (active) a pending subscription, suspend or resume one."""
    me.require_admin()
    before = await _subscription(subscription_id)
    await policy_manage.set_subscription_status(subscription_id, status)
    after = await _subscription(subscription_id)
    action = (
        "subscription.approve"
        if before["status"] == "pending" and status == "active"
        else "subscription.status"
    )
    await audit.record(me, action, f"{before['consumer_name']}/{before['api']}", before=before, after=after)
    return after


@atomic
async def change_plan(me: Principal, subscription_id: int, plan: str) -> dict[str, Any]:
    me.require_admin()
    before = await _subscription(subscription_id)
    await policy_manage.change_subscription_plan(subscription_id, plan)
    after = await _subscription(subscription_id)
    await audit.record(
        me, "subscription.plan", f"{before['consumer_name']}/{before['api']}", before=before, after=after
    )
    return after


@atomic
async def cancel_subscription(me: Principal, subscription_id: int) -> None:
    before = await _own_subscription(me, subscription_id)
    await policy_manage.cancel_subscription(subscription_id)
    await audit.record(me, "subscription.cancel", f"{before['consumer_name']}/{before['api']}", before=before)


# -- OAuth2 clients ----------------------------------------------------------------------------


async def list_clients(me: Principal, app_id: int) -> list[dict[str, Any]]:
    await apps.get_app(me, app_id)
    return await policy_manage.list_oauth_clients(app_id)


async def create_client(
    me: Principal, vault: Vault, app_id: int, chosen_scopes: list[str], name: str = ""
) -> tuple[dict[str, Any], str]:
    """A client-credentials client; its secret is returned once. The first client's signing key is made
    before the transaction, which would otherwise wait for it."""
    return await _create_client(
        me, vault, app_id, chosen_scopes, name, await policy_manage.first_signing_key()
    )


@atomic
async def _create_client(
    me: Principal,
    vault: Vault,
    app_id: int,
    chosen_scopes: list[str],
    name: str,
    first_key: policy_manage.KeyPair | None,
) -> tuple[dict[str, Any], str]:
    app = await apps.get_app(me, app_id)
    issued = await policy_manage.create_oauth_client(
        vault, app_id, chosen_scopes, name=name, first_key=first_key
    )
    row = await _client(me, app_id, issued.client_id)
    await audit.record(me, "oauth_client.create", f"{app['name']}/{issued.client_id}", after=row)
    return row, issued.client_secret


async def _client(me: Principal, app_id: int, client_id: str) -> dict[str, Any]:
    for row in await list_clients(me, app_id):
        if row["client_id"] == client_id:
            return row
    raise NotFound(f"no OAuth client {client_id!r} in this app")


@atomic
async def rotate_client_secret(
    me: Principal, app_id: int, client_id: str, overlap: timedelta = timedelta(hours=24)
) -> tuple[dict[str, Any], str]:
    """A new secret, returned once; the old one keeps working for `overlap` (refused beyond what
    policy_manage allows, naming `overlap`). The client's row after the rotation, and the secret."""
    before = await _client(me, app_id, client_id)
    issued = await policy_manage.rotate_oauth_client_secret(client_id, overlap)
    after = await _client(me, app_id, client_id)
    await audit.record(me, "oauth_client.rotate", client_id, before=before, after=after)
    return after, issued.client_secret


@atomic
async def set_client_scopes(me: Principal, app_id: int, client_id: str, scopes: list[str]) -> dict[str, Any]:
    """The client's scopes from now on: a scope taken away is gone from the tokens it already holds at once
    (every node checks a token's scopes against its client's), one added is in its next token."""
    before = await _client(me, app_id, client_id)
    await policy_manage.set_oauth_client_scopes(client_id, scopes)
    after = await _client(me, app_id, client_id)
    await audit.record(me, "oauth_client.scopes", client_id, before=before, after=after)
    return after


@atomic
async def revoke_client(me: Principal, app_id: int, client_id: str) -> dict[str, Any]:
    before = await _client(me, app_id, client_id)
    await policy_manage.revoke_oauth_client(client_id)
    after = await _client(me, app_id, client_id)
    await audit.record(me, "oauth_client.revoke", client_id, before=before, after=after)
    return after


async def rotate_any_client_secret(
    me: Principal, client_id: str, overlap: timedelta
) -> tuple[dict[str, Any], str]:
    """Admin: `rotate_client_secret` of a client known by its id alone (the CLI); a bad overlap is refused
    before the client is looked up."""
    policy_manage.check_secret_overlap(overlap)
    return await rotate_client_secret(me, await client_app(client_id), client_id, overlap)


async def client_app(client_id: str) -> int:
    row = await OAuthClient.select(OAuthClient.consumer).where(OAuthClient.client_id == client_id).first()
    if row is None:
        raise NotFound(f"no OAuth client {client_id!r}")
    return int(row["consumer"])


# -- per-consumer overrides and IP rules -------------------------------------------------------


async def get_overrides(me: Principal, app_id: int) -> dict[str, Any]:
    await apps.get_app(me, app_id)
    return await policy_manage.get_consumer_policy(app_id)


@atomic
async def set_overrides(
    me: Principal,
    app_id: int,
    *,
    overrides: dict[str, Any] | str | None = None,
    ip_allow: list[str] | None = None,
    ip_deny: list[str] | None = None,
) -> dict[str, Any]:
    """Admin: override a consumer's limits (laid over its plans) and its IP allow / deny lists."""
    me.require_admin()
    app = await apps.get_app(me, app_id)
    before = await policy_manage.get_consumer_policy(app_id)
    parsed: dict[str, Any] | None = None
    if overrides is not None:
        try:
            parsed = _decode_config(overrides)
        except InvalidParameter:
            raise InvalidParameter("overrides", "the overrides must be a JSON object") from None
    await policy_manage.set_consumer_policy(app_id, overrides=parsed, ip_allow=ip_allow, ip_deny=ip_deny)
    after = await policy_manage.get_consumer_policy(app_id)
    await audit.record(me, "consumer.overrides", app["name"], before=before, after=after)
    return after
