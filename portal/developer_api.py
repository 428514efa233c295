"""The developer JSON API under /portal/api: the /portal pages' services, for scripts and the page's
own fetches. A developer reaches only their own apps (others' are "not found"); admins reach all."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import Parameter

from gateway.store.crypto import Vault
from portal.services import analytics, apps, connections, plans
from portal.services.principal import Principal


class NewApp(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str = ""
    default_connections: dict[str, str] = {}


class AppEdit(msgspec.Struct, forbid_unknown_fields=True):
    """Left out: kept. `default_connections` replaces them all; a developer's edit grants nothing."""

    description: str | None = None
    default_connections: dict[str, str] | None = None


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    expires_in_days: int | None = None


class Rotation(msgspec.Struct, forbid_unknown_fields=True):
    overlap_hours: int = 24


class NewSubscription(msgspec.Struct, forbid_unknown_fields=True):
    api: str
    plan: str


class NewClient(msgspec.Struct, forbid_unknown_fields=True):
    scopes: list[str]
    name: str = ""


class ClientScopes(msgspec.Struct, forbid_unknown_fields=True):
    scopes: list[str]


@get("/apps", summary="Your apps")
async def list_apps(me: Principal) -> list[dict[str, Any]]:
    return await apps.list_apps(me)


@get(
    "/connections",
    summary="The connections a new app may name as defaults: those open to every app (an admin: all)",
)
async def list_connections(me: Principal) -> list[dict[str, Any]]:
    return await connections.usable_by(me)


@post("/apps", summary="Register an app")
async def create_app(me: Principal, data: NewApp) -> dict[str, Any]:
    return await apps.create_app(
        me, data.name, description=data.description, default_connections=data.default_connections
    )


@get("/apps/{app_id:int}", summary="One of your apps")
async def get_app(me: Principal, app_id: int) -> dict[str, Any]:
    return await apps.get_app(me, app_id)


@patch(
    "/apps/{app_id:int}",
    summary="Change your app's description or default connections (open or granted to the app only)",
)
async def update_app(me: Principal, app_id: int, data: AppEdit) -> dict[str, Any]:
    return await apps.update_app(
        me, app_id, description=data.description, default_connections=data.default_connections
    )


@get("/apps/{app_id:int}/keys", summary="The app's keys (prefix, created, last used, expiry, state)")
async def list_keys(me: Principal, app_id: int) -> list[dict[str, Any]]:
    return await apps.list_app_keys(me, app_id)


@post("/apps/{app_id:int}/keys", summary="Create a key; the key is in this answer only")
async def create_key(me: Principal, app_id: int, data: NewKey) -> dict[str, Any]:
    row, key = await apps.create_app_key(me, app_id, name=data.name, expires_in_days=data.expires_in_days)
    return {**row, "key": key}


@post(
    "/apps/{app_id:int}/keys/{key_id:int}/rotate",
    summary="A successor key; the old one keeps working for overlap_hours",
)
async def rotate_key(me: Principal, app_id: int, key_id: int, data: Rotation) -> dict[str, Any]:
    row, key = await apps.rotate_app_key(me, app_id, key_id, overlap=apps.overlap_hours(data.overlap_hours))
    return {**row, "key": key}


@post("/apps/{app_id:int}/keys/{key_id:int}/revoke", summary="Revoke a key at once", status_code=200)
async def revoke_key(me: Principal, app_id: int, key_id: int) -> dict[str, Any]:
    return await apps.revoke_app_key(me, app_id, key_id)


@get("/plans", summary="The plans an app can subscribe under")
async def list_plans() -> list[dict[str, Any]]:
    return await plans.list_plans()


@get("/apps/{app_id:int}/subscriptions", summary="The app's subscriptions")
async def list_subscriptions(me: Principal, app_id: int) -> list[dict[str, Any]]:
    return await plans.list_subscriptions(me, app_id=app_id)


@post(
    "/apps/{app_id:int}/subscriptions", summary="Subscribe to an API under a plan (maybe awaiting approval)"
)
async def subscribe(me: Principal, app_id: int, data: NewSubscription) -> dict[str, Any]:
    return await plans.subscribe(me, app_id, data.api, data.plan)


@delete("/subscriptions/{subscription_id:int}", summary="Cancel one of your subscriptions", status_code=204)
async def cancel_subscription(me: Principal, subscription_id: int) -> None:
    await plans.cancel_subscription(me, subscription_id)


@get("/apps/{app_id:int}/oauth-clients", summary="The app's OAuth2 clients")
async def list_clients(me: Principal, app_id: int) -> list[dict[str, Any]]:
    return await plans.list_clients(me, app_id)


@post(
    "/apps/{app_id:int}/oauth-clients", summary="Create a client-credentials client; the secret is shown once"
)
async def create_client(
    request: Request[Any, Any, Any], me: Principal, app_id: int, data: NewClient
) -> dict[str, Any]:
    vault = Vault(request.app.state.settings.secret_key)
    row, secret = await plans.create_client(me, vault, app_id, data.scopes, data.name)
    return {**row, "client_secret": secret}


@put(
    "/apps/{app_id:int}/oauth-clients/{client_id:str}/scopes",
    summary="Set a client's scopes; a scope taken away is gone from its tokens at once",
    status_code=200,
)
async def set_client_scopes(me: Principal, app_id: int, client_id: str, data: ClientScopes) -> dict[str, Any]:
    return await plans.set_client_scopes(me, app_id, client_id, data.scopes)


@post(
    "/apps/{app_id:int}/oauth-clients/{client_id:str}/revoke",
    summary="Revoke a client and the tokens it holds",
    status_code=200,
)
async def revoke_client(me: Principal, app_id: int, client_id: str) -> dict[str, Any]:
    return await plans.revoke_client(me, app_id, client_id)


@get("/apps/{app_id:int}/usage", summary="Daily calls, errors and p50/p95 latency per API")
async def usage(
    request: Request[Any, Any, Any],
    me: Principal,
    app_id: int,
    days: Annotated[int, Parameter(ge=1, le=90)] = 14,
) -> dict[str, Any]:
    return await analytics.app_usage(me, app_id, days, request.app.state.settings.usage_timezone)


@get("/apps/{app_id:int}/requests", summary="The app's recent requests (personal data masked)")
async def recent_requests(
    me: Principal, app_id: int, limit: Annotated[int, Parameter(ge=1, le=200)] = 50
) -> list[dict[str, Any]]:
    return await analytics.recent_requests(me, app_id, limit)


ROUTES: list[Any] = [
    list_apps,
    list_connections,
    create_app,
    get_app,
    update_app,
    list_keys,
    create_key,
    rotate_key,
    revoke_key,
    list_plans,
    list_subscriptions,
    subscribe,
    cancel_subscription,
    list_clients,
    create_client,
    set_client_scopes,
    revoke_client,
    usage,
    recent_requests,
]
