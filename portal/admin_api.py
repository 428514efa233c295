"""The management REST API under /admin/api: what the admin console does, for scripts.

Authenticated by an admin session or an admin token (`Authorization: Bearer uga_…`, from
`unigate admin token NAME`); the router's `admin_only` guard refuses everyone else. Handlers are
thin: they translate JSON into a call on portal.services and back.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import Parameter

from gateway.errors import InvalidParameter
from gateway.settings import environ
from gateway.store.crypto import Vault
from portal.services import accounts, analytics, apis, apps, audit, config, connections, plans
from portal.services.principal import Principal

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


def _vault(request: Request[Any, Any, Any]) -> Vault:
    return Vault(request.app.state.settings.secret_key)


# -- accounts and tokens -----------------------------------------------------------------------


class NewAccount(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str
    role: str = "developer"
    email: str = ""
    locale: str = ""


class StatusChange(msgspec.Struct, forbid_unknown_fields=True):
    status: str


class PasswordReset(msgspec.Struct, forbid_unknown_fields=True):
    password: str | None = None


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""


@get("/accounts", summary="List portal accounts")
async def list_accounts(status: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
    return await accounts.list_accounts(status=status, role=role)


@post("/accounts", summary="Create an account (admin or developer)")
async def create_account(me: Principal, data: NewAccount) -> dict[str, Any]:
    return await accounts.create_account(
        me, data.username, data.password, role=data.role, email=data.email, locale=data.locale
    )


@post("/accounts/{account_id:int}/status", summary="Approve (active) or disable an account", status_code=200)
async def set_account_status(me: Principal, account_id: int, data: StatusChange) -> dict[str, Any]:
    return await accounts.set_status(me, account_id, data.status)


@post(
    "/accounts/{account_id:int}/reset-password",
    summary="Set a new password (generated when none is given); the account's sessions end",
    status_code=200,
)
async def reset_password(me: Principal, account_id: int, data: PasswordReset) -> dict[str, str]:
    return {"password": await accounts.reset_password(me, account_id, data.password)}


@get("/tokens", summary="List admin API tokens (never the tokens themselves)")
async def list_tokens() -> list[dict[str, Any]]:
    return await accounts.list_tokens()


@post("/tokens", summary="Issue an admin API token for yourself; shown once")
async def create_token(me: Principal, data: NewToken) -> dict[str, Any]:
    row, token = await accounts.create_token(me, data.name)
    return {**row, "token": token}


@delete("/tokens/{token_id:int}", summary="Revoke an admin API token", status_code=200)
async def revoke_token(me: Principal, token_id: int) -> dict[str, Any]:
    return await accounts.revoke_token(me, token_id)


# -- connections and published APIs ------------------------------------------------------------


class ConnectionBody(msgspec.Struct, forbid_unknown_fields=True):
    system: str
    base_url: str
    # Write-only: a field left out or empty keeps the stored value.
    credentials: dict[str, str] = {}
    options: dict[str, Any] = {}
    # Every application may use it (self-service); left out: kept as it is (false for a new one).
    open: bool | None = None


@get("/systems", summary="The backend systems and the credentials each needs")
async def list_systems() -> list[dict[str, Any]]:
    return [
        {"system": system, "credentials": connections.required_credentials(system)}
        for system in connections.systems()
    ]


@get("/connections", summary="List connections (credential names only, never values)")
async def list_connections(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return await connections.list_connections(_vault(request))


@get("/connections/{name:str}", summary="One connection")
async def get_connection(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    return await connections.get_connection(_vault(request), name)


@put("/connections/{name:str}", summary="Create or update a connection; credentials are sealed")
async def put_connection(
    request: Request[Any, Any, Any], me: Principal, name: str, data: ConnectionBody
) -> dict[str, Any]:
    return await connections.save_connection(
        me,
        _vault(request),
        name=name,
        system=data.system,
        base_url=data.base_url,
        credentials=data.credentials,
        options=data.options,
        open=data.open,
    )


@delete("/connections/{name:str}", summary="Delete a connection", status_code=204)
async def delete_connection(request: Request[Any, Any, Any], me: Principal, name: str) -> None:
    await connections.delete_connection(me, _vault(request), name)


@post(
    "/connections/{name:str}/test",
    summary="Test a connection: a real signed call; the vendor's answer",
    status_code=200,
)
async def test_connection(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    return await connections.test_connection(request.app.state.settings, name)


@get("/apis", summary="Published APIs: each connection's unified operations and their scopes")
async def list_apis() -> list[dict[str, Any]]:
    return await apis.published()


# -- consumers and keys ------------------------------------------------------------------------


class NewConsumer(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str = ""
    default_connections: dict[str, str] = {}  # each one named is granted too
    owner: str | None = None  # a username
    connections: list[str] = []  # granted: it may use them besides the open ones; "*" = every one


class ConsumerChange(msgspec.Struct, forbid_unknown_fields=True):
    description: str | None = None
    default_connections: dict[str, str] | None = None
    active: bool | None = None
    connections: list[str] | None = None  # replaces the granted connections


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    expires_in_days: int | None = None


@get("/consumers", summary="List consumers (apps)")
async def list_consumers(me: Principal) -> list[dict[str, Any]]:
    return await apps.list_apps(me, everyone=True)


@post("/consumers", summary="Create a consumer")
async def create_consumer(me: Principal, data: NewConsumer) -> dict[str, Any]:
    return await apps.create_app(
        me,
        data.name,
        description=data.description,
        default_connections=data.default_connections,
        owner=data.owner,
        connections=data.connections,
    )


@get("/consumers/{consumer_id:int}", summary="One consumer")
async def get_consumer(me: Principal, consumer_id: int) -> dict[str, Any]:
    return await apps.get_app(me, consumer_id)


@patch("/consumers/{consumer_id:int}", summary="Change a consumer; `active` approves or suspends it")
async def update_consumer(me: Principal, consumer_id: int, data: ConsumerChange) -> dict[str, Any]:
    if data.connections is not None:  # first: defaults named in the same change are granted on top
        await apps.change_grants(me, consumer_id, replace=data.connections)
    app = await apps.update_app(
        me, consumer_id, description=data.description, default_connections=data.default_connections
    )
    if data.active is not None and data.active != app["active"]:
        app = await apps.set_app_active(me, consumer_id, data.active)
    return app


class Grants(msgspec.Struct, forbid_unknown_fields=True):
    connections: list[str]  # connection names; "*" = every connection


@post(
    "/consumers/{consumer_id:int}/connections/grant",
    summary="Let a consumer use connections besides the open ones",
    status_code=200,
)
async def grant_connections(me: Principal, consumer_id: int, data: Grants) -> dict[str, Any]:
    return await apps.change_grants(me, consumer_id, grant=data.connections)


@post(
    "/consumers/{consumer_id:int}/connections/revoke",
    summary="Take grants back; a call through a revoked connection is a 403 connection_not_granted",
    status_code=200,
)
async def revoke_connections(me: Principal, consumer_id: int, data: Grants) -> dict[str, Any]:
    return await apps.change_grants(me, consumer_id, revoke=data.connections)


@get("/consumers/{consumer_id:int}/keys", summary="A consumer's API keys")
async def list_consumer_keys(me: Principal, consumer_id: int) -> list[dict[str, Any]]:
    return await apps.list_app_keys(me, consumer_id)


@post("/consumers/{consumer_id:int}/keys", summary="Issue an API key for a consumer; shown once")
async def create_consumer_key(me: Principal, consumer_id: int, data: NewKey) -> dict[str, Any]:
    row, key = await apps.create_app_key(
        me, consumer_id, name=data.name, expires_in_days=data.expires_in_days
    )
    return {**row, "key": key}


@get("/keys", summary="Find API keys by the first characters of the key")
async def find_keys(
    me: Principal, prefix: Annotated[str, Parameter(description="at least the first 4 characters")]
) -> list[dict[str, Any]]:
    return await apps.find_keys(me, prefix)


@post(
    "/keys/{key_id:int}/revoke", summary="Revoke an API key: calls with it get 401 at once", status_code=200
)
async def revoke_key(me: Principal, key_id: int) -> dict[str, Any]:
    return await apps.revoke_any_key(me, key_id)


# -- plans, subscriptions, overrides -----------------------------------------------------------


class PlanBody(msgspec.Struct, forbid_unknown_fields=True):
    config: dict[str, Any] = {}  # rate_limits, quotas, priority, apis (policies/authorize.py PlanConfig)
    description: str = ""
    requires_approval: bool = False


class PlanChange(msgspec.Struct, forbid_unknown_fields=True):
    config: dict[str, Any] | None = None
    description: str | None = None
    requires_approval: bool | None = None


class NewSubscription(msgspec.Struct, forbid_unknown_fields=True):
    consumer: int
    api: str
    plan: str


class SubscriptionChange(msgspec.Struct, forbid_unknown_fields=True):
    status: str | None = None  # active (approve / resume) | suspended
    plan: str | None = None


class Overrides(msgspec.Struct, forbid_unknown_fields=True):
    overrides: dict[str, Any] | None = None
    ip_allow: list[str] | None = None
    ip_deny: list[str] | None = None


@get("/plans", summary="List plans")
async def list_plans() -> list[dict[str, Any]]:
    return await plans.list_plans()


@post("/plans/{name:str}", summary="Create a plan")
async def create_plan(me: Principal, name: str, data: PlanBody) -> dict[str, Any]:
    return await plans.create_plan(
        me, name, data.config, description=data.description, requires_approval=data.requires_approval
    )


@patch("/plans/{name:str}", summary="Change a plan; its subscriptions follow at once")
async def update_plan(me: Principal, name: str, data: PlanChange) -> dict[str, Any]:
    return await plans.update_plan(
        me, name, config=data.config, description=data.description, requires_approval=data.requires_approval
    )


@delete("/plans/{name:str}", summary="Delete a plan no subscription uses", status_code=204)
async def delete_plan(me: Principal, name: str) -> None:
    await plans.delete_plan(me, name)


@get("/subscriptions", summary="Subscriptions; status=pending is the approval queue")
async def list_subscriptions(
    me: Principal, status: str | None = None, consumer: int | None = None
) -> list[dict[str, Any]]:
    return await plans.list_subscriptions(me, app_id=consumer, status=status)


@post("/subscriptions", summary="Subscribe a consumer to an API under a plan")
async def create_subscription(me: Principal, data: NewSubscription) -> dict[str, Any]:
    return await plans.subscribe(me, data.consumer, data.api, data.plan)


@patch(
    "/subscriptions/{subscription_id:int}", summary="Approve, suspend or resume a subscription, or move it"
)
async def update_subscription(
    me: Principal, subscription_id: int, data: SubscriptionChange
) -> dict[str, Any]:
    if data.status is None and data.plan is None:
        raise InvalidParameter("status", "give a status or a plan")
    result: dict[str, Any] = {}
    if data.plan is not None:
        result = await plans.change_plan(me, subscription_id, data.plan)
    if data.status is not None:
        result = await plans.set_subscription_status(me, subscription_id, data.status)
    return result


@delete("/subscriptions/{subscription_id:int}", summary="Cancel a subscription", status_code=204)
async def cancel_subscription(me: Principal, subscription_id: int) -> None:
    await plans.cancel_subscription(me, subscription_id)


@get("/consumers/{consumer_id:int}/policy", summary="A consumer's limit overrides and IP rules")
async def get_consumer_policy(me: Principal, consumer_id: int) -> dict[str, Any]:
    return await plans.get_overrides(me, consumer_id)


@put("/consumers/{consumer_id:int}/policy", summary="Override a consumer's limits; set its IP rules")
async def put_consumer_policy(me: Principal, consumer_id: int, data: Overrides) -> dict[str, Any]:
    return await plans.set_overrides(
        me, consumer_id, overrides=data.overrides, ip_allow=data.ip_allow, ip_deny=data.ip_deny
    )


@get("/analytics", summary="Traffic, errors, latency, top consumers and limiter rejections per day")
async def get_analytics(
    request: Request[Any, Any, Any], days: Annotated[int, Parameter(ge=1, le=90)] = 7
) -> dict[str, Any]:
    overview = await analytics.overview(days, request.app.state.settings.usage_timezone)
    return {**overview, "breakers": request.app.state.runtime.upstream.breaker_states()}


# -- audit and declarative configuration -------------------------------------------------------


class ConfigDocument(msgspec.Struct, forbid_unknown_fields=True):
    document: str  # the YAML text
    comment: str = ""
    # The preview's `base`: apply refuses (409) if the configuration changed since that preview.
    base: str | None = None


@get("/audit", summary="The audit log, newest first (secrets redacted)")
async def list_audit(
    action: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> list[dict[str, Any]]:
    return await audit.list_events(limit=limit, offset=offset, action=action, actor=actor)


@get("/config", summary="Export the configuration as YAML (credentials as ${ENV_VAR} references)")
async def export_config(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"document": await config.export_yaml(_vault(request))}


@post(
    "/config/preview", summary="What applying a document would change (nothing is written)", status_code=200
)
async def preview_config(request: Request[Any, Any, Any], data: ConfigDocument) -> dict[str, Any]:
    return msgspec.to_builtins(await config.preview(data.document, environ(), _vault(request)))  # type: ignore[no-any-return]


@post("/config/apply", summary="Validate and apply a document in one transaction; stored as a version")
async def apply_config(
    request: Request[Any, Any, Any], me: Principal, data: ConfigDocument
) -> dict[str, Any]:
    applied = await config.apply(
        me, data.document, environ(), _vault(request), comment=data.comment, base=data.base
    )
    return msgspec.to_builtins(applied)  # type: ignore[no-any-return]


@get("/config/versions", summary="Applied configuration versions, newest first")
async def list_config_versions() -> list[dict[str, Any]]:
    return await config.list_versions()


@get("/config/versions/{version:int}", summary="One configuration version with its document")
async def get_config_version(version: int) -> dict[str, Any]:
    return await config.get_version(version)


@post("/config/versions/{version:int}/rollback", summary="Apply an older version again", status_code=200)
async def rollback_config(request: Request[Any, Any, Any], me: Principal, version: int) -> dict[str, Any]:
    return msgspec.to_builtins(await config.rollback(me, version, environ(), _vault(request)))  # type: ignore[no-any-return]


ROUTES: list[Any] = [
    list_accounts,
    create_account,
    set_account_status,
    reset_password,
    list_tokens,
    create_token,
    revoke_token,
    list_systems,
    list_connections,
    get_connection,
    put_connection,
    delete_connection,
    test_connection,
    list_apis,
    list_consumers,
    create_consumer,
    get_consumer,
    update_consumer,
    grant_connections,
    revoke_connections,
    list_consumer_keys,
    create_consumer_key,
    find_keys,
    revoke_key,
    list_plans,
    create_plan,
    update_plan,
    delete_plan,
    list_subscriptions,
    create_subscription,
    update_subscription,
    cancel_subscription,
    get_consumer_policy,
    put_consumer_policy,
    get_analytics,
    list_audit,
    export_config,
    preview_config,
    apply_config,
    list_config_versions,
    get_config_version,
    rollback_config,
]
