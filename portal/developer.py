"""Developer self-service pages under /portal: apps, their keys, subscriptions and usage."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import UnigateError
from gateway.store import manage
from portal.auth import developer_or_admin
from portal.forms import Form, errors_of, text
from portal.services import apps
from portal.services.principal import Principal
from portal.web import page


def _defaults(form: dict[str, Any]) -> dict[str, str]:
    return {resource: text(form, f"default_{resource}") for resource in apps.RESOURCES}


async def _home(request: Request[Any, Any, Any], me: Principal, **extra: Any) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    return page(
        request,
        "developer/home.html",
        title="My apps",
        apps=await apps.list_apps(me),
        connections=await manage.list_connections(),
        resources=apps.RESOURCES,
        **extra,
    )


@get("/", guards=[developer_or_admin])
async def home(request: Request[Any, Any, Any], me: Principal) -> Template:
    return await _home(request, me)


@post("/apps", guards=[developer_or_admin], status_code=HTTP_303_SEE_OTHER)
async def create_app(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    try:
        app = await apps.create_app(
            me, text(data, "name"), description=text(data, "description"), default_connections=_defaults(data)
        )
    except UnigateError as error:
        return await _home(request, me, errors=errors_of(error), form=data)
    return Redirect(f"/portal/apps/{app['id']}", status_code=HTTP_303_SEE_OTHER)


async def _app_page(
    request: Request[Any, Any, Any], me: Principal, app_id: int, status_code: int = 200, **extra: Any
) -> Template:
    app = await apps.get_app(me, app_id)
    extra.setdefault("errors", {})
    return page(
        request,
        "developer/app.html",
        status_code=status_code,
        title=app["name"],
        app=app,
        keys=await apps.list_app_keys(me, app_id),
        **extra,
    )


@get("/apps/{app_id:int}", guards=[developer_or_admin])
async def app_page(request: Request[Any, Any, Any], me: Principal, app_id: int) -> Template:
    return await _app_page(request, me, app_id)


def _int_or_none(value: str, field: str) -> int | None:
    from gateway.errors import InvalidParameter

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
        return await _app_page(request, me, app_id, status_code=error.status, errors=errors_of(error))
    return await _app_page(request, me, app_id, new_key={"row": row, "secret": secret})


@post("/apps/{app_id:int}/keys/{key_id:int}/rotate", guards=[developer_or_admin], status_code=200)
async def rotate_key(
    request: Request[Any, Any, Any], me: Principal, app_id: int, key_id: int, data: Form
) -> Template:
    try:
        hours = _int_or_none(text(data, "overlap_hours"), "overlap_hours")
        row, secret = await apps.rotate_app_key(
            me, app_id, key_id, overlap_hours=24 if hours is None else hours
        )
    except UnigateError as error:
        return await _app_page(request, me, app_id, status_code=error.status, errors=errors_of(error))
    return await _app_page(request, me, app_id, new_key={"row": row, "secret": secret, "rotated": True})


@post("/apps/{app_id:int}/keys/{key_id:int}/revoke", guards=[developer_or_admin], status_code=200)
async def revoke_key(request: Request[Any, Any, Any], me: Principal, app_id: int, key_id: int) -> Template:
    await apps.revoke_app_key(me, app_id, key_id)
    return await _app_page(request, me, app_id)


PAGES = [home, create_app, app_page, create_key, rotate_key, revoke_key]
