"""Developer self-service pages under /portal: apps, their keys, subscriptions and usage."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import InvalidParameter, UnigateError
from gateway.store import manage
from gateway.store.crypto import Vault
from portal.auth import developer_or_admin
from portal.forms import Form, errors_of, text
from portal.services import analytics, apps, connections, plans
from portal.services.principal import Principal
from portal.web import page


def _defaults(form: dict[str, Any]) -> dict[str, str]:
    return {resource: text(form, f"default_{resource}") for resource in apps.RESOURCES}


async def _home(
    request: Request[Any, Any, Any], me: Principal, status_code: int = 200, **extra: Any
) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    return page(
        request,
        "developer/home.html",
        status_code=status_code,
        title="My apps",
        apps=await apps.list_apps(me),
        # Only those its new app may use: the open ones (an admin may pick any, granting it by doing so).
        connections=await connections.usable_by(me),
        resources=apps.RESOURCES,
        **extra,
    )


@get("/", guards=[developer_or_admin])
async def home(request: Request[Any, Any, Any], me: Principal) -> Template:
    return await _home(request, me)


@get("/apps", guards=[developer_or_admin])
async def apps_list() -> Redirect:
    """The list lives on /portal; this address is where a refused "Register app" form leaves the browser,
    so reloading it or switching language from there must not end on a 405."""
    return Redirect("/portal", status_code=HTTP_303_SEE_OTHER)


@post("/apps", guards=[developer_or_admin], status_code=HTTP_303_SEE_OTHER)
async def create_app(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    try:
        app = await apps.create_app(
            me, text(data, "name"), description=text(data, "description"), default_connections=_defaults(data)
        )
    except UnigateError as error:
        return await _home(request, me, status_code=error.status, errors=errors_of(error), form=data)
    return Redirect(f"/portal/apps/{app['id']}", status_code=HTTP_303_SEE_OTHER)


async def _refused(
    request: Request[Any, Any, Any], me: Principal, app_id: int, error: UnigateError, section: str, form: Form
) -> Template:
    """The app page again with the error beside the form of `section`, and what was typed kept."""
    return await _app_page(
        request, me, app_id, status_code=error.status, errors=errors_of(error), failed=section, form=form
    )


async def _app_page(
    request: Request[Any, Any, Any], me: Principal, app_id: int, status_code: int = 200, **extra: Any
) -> Template:
    app = await apps.get_app(me, app_id)
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    extra.setdefault("failed", None)
    settings = request.app.state.settings
    return page(
        request,
        "developer/app.html",
        status_code=status_code,
        title=app["name"],
        app=app,
        keys=await apps.list_app_keys(me, app_id),
        subscriptions=await plans.list_subscriptions(me, app_id=app_id),
        plans=await plans.list_plans(),
        apis=plans.apis(),
        scopes=plans.scopes(),
        clients=await plans.list_clients(me, app_id),
        usage=await analytics.app_usage(me, app_id, 14, settings.usage_timezone),
        requests=await analytics.recent_requests(me, app_id, 20),
        policy=await plans.get_overrides(me, app_id) if me.is_admin else None,
        all_connections=await manage.list_connections() if me.is_admin else None,
        # The defaults it may choose: open or granted to this app (an admin: any, granting it by choosing).
        usable=await connections.usable_by(me, app_id),
        resources=apps.RESOURCES,
        **extra,
    )


@get("/apps/{app_id:int}", guards=[developer_or_admin])
async def app_page(request: Request[Any, Any, Any], me: Principal, app_id: int) -> Template:
    return await _app_page(request, me, app_id)


@post("/apps/{app_id:int}/settings", guards=[developer_or_admin], status_code=200)
async def update_app(request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form) -> Template:
    """The description and the default connection per API; a default set for `*` (no form field) is kept."""
    try:
        app = await apps.get_app(me, app_id)
        kept = {k: v for k, v in app["default_connections"].items() if k not in apps.RESOURCES}
        await apps.update_app(
            me,
            app_id,
            description=text(data, "description"),
            default_connections={**kept, **_defaults(data)},
        )
    except UnigateError as error:
        if error.status == 404:
            raise
        return await _refused(request, me, app_id, error, "settings", data)
    return await _app_page(request, me, app_id, saved_settings=True)


def _int_or_none(value: str, field: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(field, f"{field} is a whole number") from None


@post("/apps/{app_id:int}/keys", guards=[developer_or_admin], status_code=200)
async def create_key(request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form) -> Template:
    try:
        row, secret = await apps.create_app_key(
            me,
            app_id,
            name=text(data, "name"),
            expires_in_days=_int_or_none(text(data, "expires_in_days"), "expires_in_days"),
        )
    except UnigateError as error:
        return await _refused(request, me, app_id, error, "keys", data)
    return await _app_page(request, me, app_id, new_key={"row": row, "secret": secret})


@post("/apps/{app_id:int}/keys/{key_id:int}/rotate", guards=[developer_or_admin], status_code=200)
async def rotate_key(
    request: Request[Any, Any, Any], me: Principal, app_id: int, key_id: int, data: Form
) -> Template:
    try:
        hours = _int_or_none(text(data, "overlap_hours"), "overlap_hours")
        overlap = apps.overlap_hours(24 if hours is None else hours)
        row, secret = await apps.rotate_app_key(me, app_id, key_id, overlap=overlap)
    except UnigateError as error:
        return await _refused(request, me, app_id, error, "keys", {})
    return await _app_page(request, me, app_id, new_key={"row": row, "secret": secret, "rotated": True})


@post("/apps/{app_id:int}/keys/{key_id:int}/revoke", guards=[developer_or_admin], status_code=200)
async def revoke_key(request: Request[Any, Any, Any], me: Principal, app_id: int, key_id: int) -> Template:
    await apps.revoke_app_key(me, app_id, key_id)
    return await _app_page(request, me, app_id)


@post("/apps/{app_id:int}/subscriptions", guards=[developer_or_admin], status_code=200)
async def subscribe(request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form) -> Template:
    try:
        await plans.subscribe(me, app_id, text(data, "api"), text(data, "plan"))
    except UnigateError as error:
        return await _refused(request, me, app_id, error, "subscriptions", data)
    return await _app_page(request, me, app_id)


@post(
    "/apps/{app_id:int}/subscriptions/{subscription_id:int}/cancel",
    guards=[developer_or_admin],
    status_code=200,
)
async def cancel_subscription(
    request: Request[Any, Any, Any], me: Principal, app_id: int, subscription_id: int
) -> Template:
    await plans.cancel_subscription(me, subscription_id)
    return await _app_page(request, me, app_id)


@post("/apps/{app_id:int}/oauth-clients", guards=[developer_or_admin], status_code=200)
async def create_client(request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form) -> Template:
    chosen = data.get("scopes", [])
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    try:
        vault = Vault(request.app.state.settings.secret_key)
        row, secret = await plans.create_client(me, vault, app_id, chosen, text(data, "name"))
    except UnigateError as error:
        return await _refused(request, me, app_id, error, "oauth", {**data, "scopes": chosen})
    return await _app_page(request, me, app_id, new_client={"row": row, "secret": secret})


@post("/apps/{app_id:int}/oauth-clients/{client_id:str}/revoke", guards=[developer_or_admin], status_code=200)
async def revoke_client(
    request: Request[Any, Any, Any], me: Principal, app_id: int, client_id: str
) -> Template:
    await plans.revoke_client(me, app_id, client_id)
    return await _app_page(request, me, app_id)


@post("/apps/{app_id:int}/policy", guards=[developer_or_admin], status_code=200)
async def set_policy(request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form) -> Template:
    """Admins only (the service refuses developers): limit overrides and IP rules of this app."""

    def lines(name: str) -> list[str]:
        return [line.strip() for line in str(data.get(name, "")).splitlines() if line.strip()]

    try:
        await plans.set_overrides(
            me,
            app_id,
            overrides=str(data.get("overrides", "")),
            ip_allow=lines("ip_allow"),
            ip_deny=lines("ip_deny"),
        )
    except UnigateError as error:
        if error.status == 403:
            raise
        return await _refused(request, me, app_id, error, "policy", data)
    return await _app_page(request, me, app_id, saved_policy=True)


@post("/apps/{app_id:int}/connections", guards=[developer_or_admin], status_code=200)
async def set_connections(
    request: Request[Any, Any, Any], me: Principal, app_id: int, data: Form
) -> Template:
    """Admins only (the service refuses developers): the connections this app may use."""
    chosen = data.get("connections", [])
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    try:
        await apps.change_grants(me, app_id, replace=chosen)
    except UnigateError as error:
        if error.status == 403:
            raise
        return await _refused(request, me, app_id, error, "connections", data)
    return await _app_page(request, me, app_id, saved_grants=True)


@get("/reference", guards=[developer_or_admin])
async def reference(request: Request[Any, Any, Any], me: Principal) -> Template:
    return page(request, "developer/reference.html", title="API reference", my_apps=await apps.list_apps(me))


PAGES = [
    home,
    apps_list,
    create_app,
    app_page,
    update_app,
    create_key,
    rotate_key,
    revoke_key,
    subscribe,
    cancel_subscription,
    create_client,
    revoke_client,
    set_policy,
    set_connections,
    reference,
]
