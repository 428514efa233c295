"""Admin pages under /admin (the router guards every one with `admin_only`).

Each page is a thin handler over portal.services; forms post back to the same page and htmx swaps
the section they changed (`hx-select`), so every page also works without JavaScript.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import InvalidParameter, NotFound, UnigateError
from gateway.settings import environ
from gateway.store.crypto import Vault
from portal.forms import Form, errors_of, text
from portal.services import accounts, analytics, apis, apps, audit, config, connections, plans
from portal.services.principal import Principal
from portal.web import page


def _vault(request: Request[Any, Any, Any]) -> Vault:
    return Vault(request.app.state.settings.secret_key)


# -- dashboard ---------------------------------------------------------------------------------


@get("/")
async def dashboard(request: Request[Any, Any, Any], days: int = 7) -> Template:
    days = max(1, min(days, 90))
    return page(
        request,
        "admin/dashboard.html",
        title="Dashboard",
        days=days,
        overview=await analytics.overview(days, request.app.state.settings.usage_timezone),
        breakers=request.app.state.runtime.upstream.breaker_states(),
    )


# -- connections -------------------------------------------------------------------------------


async def _connections_page(
    request: Request[Any, Any, Any], status_code: int = 200, **extra: Any
) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    systems = {system: connections.required_credentials(system) for system in connections.systems()}
    # The fields the form draws: an error naming any other is said above the form.
    drawn_fields = [
        "name",
        "system",
        "base_url",
        "options",
        *connections.LIMIT_FIELDS,
        *(f"credentials.{field}" for fields in systems.values() for field in fields),
    ]
    return page(
        request,
        "admin/connections.html",
        status_code=status_code,
        title="Connections",
        connections=await connections.list_connections(_vault(request)),
        systems=systems,
        limit_fields=connections.LIMIT_FIELDS,
        drawn_fields=drawn_fields,
        **extra,
    )


@get("/connections")
async def connections_page(request: Request[Any, Any, Any], edit: str = "", saved: str = "") -> Template:
    """The connections; `?edit=NAME` fills the form with one, `?saved=NAME` says that one was saved."""
    form: dict[str, Any] = {}
    if edit:
        current = await connections.get_connection(_vault(request), edit)
        options = dict(current["options"])
        form = {
            "name": current["name"],
            "system": current["system"],
            "base_url": current["base_url"],
            **{field: options.pop(field) for field in connections.LIMIT_FIELDS if field in options},
            "options": _json_text(options),
            "editing": True,
            "credential_fields": current["credential_fields"],
            "open": current["open"],
        }
    return await _connections_page(request, form=form, saved=saved)


def _json_text(value: dict[str, Any]) -> str:
    return msgspec.json.encode(value).decode() if value else ""


# The connection form's fields where the service names them otherwise: the backend limits are options,
# and any other option (`options.breaker.failures`) is in the form's JSON field.
CONNECTION_FORM_FIELDS = {"options": "options", **{f"options.{k}": k for k in connections.LIMIT_FIELDS}}


@post("/connections", status_code=HTTP_303_SEE_OTHER)
async def save_connection(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    system = text(data, "system")
    credentials = {
        field: str(data.get(f"credential_{field}", ""))
        for field in connections.required_credentials(system)
        if f"credential_{field}" in data
    }
    try:
        options = connections.parse_limits(
            {f: text(data, f) for f in connections.LIMIT_FIELDS}, text(data, "options")
        )
        saved = await connections.save_connection(
            me,
            _vault(request),
            name=text(data, "name"),
            system=system,
            base_url=text(data, "base_url"),
            credentials=credentials,
            options=options,
            open=bool(text(data, "open")),  # a checkbox: sent only when ticked
        )
    except UnigateError as error:
        # Secrets typed are not sent back into the page; the form says to type them again.
        form = {k: v for k, v in data.items() if not k.startswith("credential_")}
        form["editing"] = await connections.exists(text(data, "name"))
        form["credentials_dropped"] = any(str(v) for k, v in data.items() if k.startswith("credential_"))
        errors = errors_of(error, CONNECTION_FORM_FIELDS)
        return await _connections_page(request, status_code=error.status, errors=errors, form=form)
    return Redirect(f"/admin/connections?saved={saved['name']}", status_code=HTTP_303_SEE_OTHER)


@post("/connections/{name:str}/test", status_code=200)
async def test_connection(request: Request[Any, Any, Any], name: str) -> Template:
    result = await connections.test_connection(request.app.state.settings, name)
    return page(request, "admin/connection_test.html", title="Test connection", name=name, result=result)


@post("/connections/{name:str}/delete", status_code=HTTP_303_SEE_OTHER)
async def delete_connection(request: Request[Any, Any, Any], me: Principal, name: str) -> Redirect:
    await connections.delete_connection(me, _vault(request), name)
    return Redirect("/admin/connections", status_code=HTTP_303_SEE_OTHER)


@get("/apis")
async def apis_page(request: Request[Any, Any, Any]) -> Template:
    return page(request, "admin/apis.html", title="APIs", published=await apis.published())


# -- plans and the subscription queue ----------------------------------------------------------


async def _plans_page(request: Request[Any, Any, Any], status_code: int = 200, **extra: Any) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    return page(
        request,
        "admin/plans.html",
        status_code=status_code,
        title="Plans",
        plans=await plans.list_plans(),
        apis=plans.apis(),
        **extra,
    )


@get("/plans")
async def plans_page(request: Request[Any, Any, Any], edit: str = "") -> Template:
    """The plans; `?edit=NAME` fills the form with that plan, so changing one limit keeps the others."""
    form: dict[str, Any] = {}
    if edit:
        plan = await plans.get_plan(edit)
        limits = plan["config"]
        form = {
            "name": plan["name"],
            "description": plan["description"],
            "existing": "1",
            "requires_approval": plan["requires_approval"],
            "priority": limits.get("priority", "normal"),
            "strategy": limits.get("rate_limits", {}).get("strategy", ""),
            "apis": list(limits.get("apis", [])),
            **{
                f"{group}.{k}": v
                for group in ("rate_limits", "quotas")
                for k, v in limits.get(group, {}).items()
                if k != "strategy" and v is not None
            },
        }
    return await _plans_page(request, form=form)


def _chosen_apis(form: dict[str, Any]) -> list[str]:
    chosen = form.get("apis", [])
    return [chosen] if isinstance(chosen, str) else list(chosen)


def _plan_config(form: dict[str, Any]) -> dict[str, Any]:
    """The plan's limits from the form's fields; empty fields are no limit."""

    def number(name: str) -> int | None:
        raw = text(form, name)
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            raise InvalidParameter(name, f"{name} is a whole number") from None

    chosen = _chosen_apis(form)
    rate: dict[str, Any] = {
        k: v for k in ("per_second", "per_minute") if (v := number(f"rate_limits.{k}")) is not None
    }
    if strategy := text(form, "strategy"):
        rate["strategy"] = strategy
    quotas = {k: v for k in ("per_day", "per_month") if (v := number(f"quotas.{k}")) is not None}
    return {
        "rate_limits": rate,
        "quotas": quotas,
        "priority": text(form, "priority") or "normal",
        "apis": chosen,
    }


@post("/plans", status_code=HTTP_303_SEE_OTHER)
async def save_plan(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    name = text(data, "name")
    try:
        config_ = _plan_config(data)
        approval = text(data, "requires_approval") == "on"
        if text(data, "existing"):
            await plans.update_plan(
                me, name, config=config_, description=text(data, "description"), requires_approval=approval
            )
        else:
            await plans.create_plan(
                me, name, config_, description=text(data, "description"), requires_approval=approval
            )
    except UnigateError as error:
        return await _plans_page(
            request,
            status_code=error.status,
            errors=_plan_errors(error),
            form={**data, "apis": _chosen_apis(data), "submitted": True},
        )
    return Redirect("/admin/plans", status_code=HTTP_303_SEE_OTHER)


def _plan_errors(error: UnigateError) -> dict[str, str]:
    """The service names a plan's fields inside its config (`config.quotas.per_day: ...`); the form's
    fields are `quotas.per_day`, so the message goes beside the field it is about."""
    ((field, message),) = errors_of(error).items()
    if field.startswith("config."):
        message = message.removeprefix(f"{field}: ")
        field = field.removeprefix("config.")
        if field.startswith("apis"):
            field = "apis"
    return {field: message}


@post("/plans/{name:str}/delete", status_code=HTTP_303_SEE_OTHER)
async def delete_plan(request: Request[Any, Any, Any], me: Principal, name: str) -> Template | Redirect:
    try:
        await plans.delete_plan(me, name)
    except UnigateError as error:
        return await _plans_page(request, status_code=error.status, errors=errors_of(error))
    return Redirect("/admin/plans", status_code=HTTP_303_SEE_OTHER)


async def _subscriptions_page(request: Request[Any, Any, Any], me: Principal, status: str) -> Template:
    return page(
        request,
        "admin/subscriptions.html",
        title="Subscriptions",
        status=status,
        subscriptions=await plans.list_subscriptions(me, status=status or None),
        plans=await plans.list_plans(),
    )


@get("/subscriptions")
async def subscriptions_page(
    request: Request[Any, Any, Any], me: Principal, status: str = "pending"
) -> Template:
    return await _subscriptions_page(request, me, status)


@post("/subscriptions/{subscription_id:int}", status_code=200)
async def subscription_action(
    request: Request[Any, Any, Any], me: Principal, subscription_id: int, data: Form
) -> Template:
    action = text(data, "action")
    if action == "plan":
        await plans.change_plan(me, subscription_id, text(data, "plan"))
    else:
        await plans.set_subscription_status(me, subscription_id, {"approve": "active"}.get(action, action))
    return await _subscriptions_page(request, me, text(data, "status_filter"))


# -- consumers and keys ------------------------------------------------------------------------


async def _consumers_page(
    request: Request[Any, Any, Any], me: Principal, status_code: int = 200, **extra: Any
) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    return page(
        request,
        "admin/consumers.html",
        status_code=status_code,
        title="Consumers",
        consumers=await apps.list_apps(me, everyone=True),
        **extra,
    )


@get("/consumers")
async def consumers_page(request: Request[Any, Any, Any], me: Principal, created: str = "") -> Template:
    return await _consumers_page(request, me, created=created)


@post("/consumers", status_code=HTTP_303_SEE_OTHER)
async def create_consumer(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    """An admin creates a consumer here (owned by nobody) rather than through a developer's "My apps"."""
    try:
        app = await apps.create_app(me, text(data, "name"), description=text(data, "description"))
    except UnigateError as error:
        errors = errors_of(error)
        return await _consumers_page(request, me, status_code=error.status, errors=errors, form=data)
    # Redirected: a reload shows the list rather than posting the form again.
    return Redirect(f"/admin/consumers?created={app['name']}", status_code=HTTP_303_SEE_OTHER)


@post("/consumers/{consumer_id:int}/{action:str}", status_code=200)
async def consumer_action(
    request: Request[Any, Any, Any], me: Principal, consumer_id: int, action: str
) -> Template:
    if action not in ("activate", "suspend"):
        raise NotFound(f"no consumer action {action!r}")
    await apps.set_app_active(me, consumer_id, action == "activate")
    return await _consumers_page(request, me)


@get("/keys")
async def keys_page(request: Request[Any, Any, Any], me: Principal, prefix: str = "") -> Template:
    found: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    if prefix:
        try:
            found = await apps.find_keys(me, prefix.strip())
        except UnigateError as error:
            errors = errors_of(error)
    return page(
        request,
        "admin/keys.html",
        title="Keys",
        prefix=prefix,
        keys=found,
        errors=errors,
        searched=bool(prefix),
    )


@post("/keys/{key_id:int}/revoke", status_code=HTTP_303_SEE_OTHER)
async def revoke_key(me: Principal, key_id: int, data: Form) -> Redirect:
    row = await apps.revoke_any_key(me, key_id)
    return Redirect(
        f"/admin/keys?prefix={text(data, 'prefix') or row['prefix']}", status_code=HTTP_303_SEE_OTHER
    )


# -- accounts and admin tokens -----------------------------------------------------------------


async def _accounts_page(request: Request[Any, Any, Any], **extra: Any) -> Template:
    extra.setdefault("errors", {})
    return page(
        request,
        "admin/accounts.html",
        title="Accounts",
        accounts=await accounts.list_accounts(),
        tokens=await accounts.list_tokens(),
        **extra,
    )


@get("/accounts")
async def accounts_page(request: Request[Any, Any, Any]) -> Template:
    return await _accounts_page(request)


@post("/accounts/{account_id:int}/{action:str}", status_code=200)
async def account_action(
    request: Request[Any, Any, Any], me: Principal, account_id: int, action: str
) -> Template:
    try:
        if action == "approve" or action == "enable":
            await accounts.set_status(me, account_id, "active")
        elif action == "disable":
            await accounts.set_status(me, account_id, "disabled")
        elif action == "reset-password":
            password = await accounts.reset_password(me, account_id)
            account = await accounts.get_account(account_id)
            return await _accounts_page(
                request, new_password={"username": account["username"], "password": password}
            )
        else:
            raise NotFound(f"no account action {action!r}")
    except UnigateError as error:
        return await _accounts_page(request, errors=errors_of(error))
    return await _accounts_page(request)


@post("/tokens", status_code=200)
async def create_token(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template:
    row, token = await accounts.create_token(me, text(data, "name"))
    return await _accounts_page(request, new_token={"row": row, "token": token})


@post("/tokens/{token_id:int}/revoke", status_code=200)
async def revoke_token(request: Request[Any, Any, Any], me: Principal, token_id: int) -> Template:
    await accounts.revoke_token(me, token_id)
    return await _accounts_page(request)


# -- audit log ---------------------------------------------------------------------------------


@get("/audit")
async def audit_page(
    request: Request[Any, Any, Any], action: str = "", actor: str = "", page_no: int = 0
) -> Template:
    size = 50
    events = await audit.list_events(
        limit=size + 1, offset=page_no * size, action=action or None, actor=actor or None
    )
    return page(
        request,
        "admin/audit.html",
        title="Audit log",
        events=events[:size],
        more=len(events) > size,
        action=action,
        actor=actor,
        page_no=page_no,
    )


# -- declarative configuration -----------------------------------------------------------------


async def _config_page(request: Request[Any, Any, Any], status_code: int = 200, **extra: Any) -> Template:
    extra.setdefault("errors", {})
    extra.setdefault("document", None)
    if extra["document"] is None:
        extra["document"] = await config.export_yaml(_vault(request))
    return page(
        request,
        "admin/config.html",
        status_code=status_code,
        title="Configuration",
        versions=await config.list_versions(),
        **extra,
    )


@get("/config")
async def config_page(
    request: Request[Any, Any, Any],
    version: int | None = None,
    applied: int | None = None,
    changes: int | None = None,
) -> Template:
    """The configuration; `?version=N` shows a stored version, `?applied=N&changes=C` says what an apply
    or a rollback just made (they redirect here, so reloading the page does not apply again)."""
    shown = (await config.get_version(version))["document"] if version else None
    made = {"version": applied, "changes": changes or 0} if applied else None
    return await _config_page(request, document=shown, shown_version=version, applied=made)


@get("/config/export")
async def export_config(request: Request[Any, Any, Any], version: int | None = None) -> Response[str]:
    """The configuration (or stored version `version`) as the YAML file `unigate config apply` takes."""
    if version:
        document, name = (await config.get_version(version))["document"], f"unigate-v{version}.yaml"
    else:
        document, name = await config.export_yaml(_vault(request)), "unigate.yaml"
    return Response(
        document,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _applied_redirect(applied: config.Applied) -> Redirect:
    return Redirect(
        f"/admin/config?applied={applied.version}&changes={len(applied.changes)}",
        status_code=HTTP_303_SEE_OTHER,
    )


@post("/config", status_code=200)
async def config_action(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template | Redirect:
    """`preview` shows the diff; `apply` applies the same document (after the admin has seen it)."""
    document = str(data.get("document", ""))
    try:
        if text(data, "action") == "apply":
            applied = await config.apply(
                me,
                document,
                environ(),
                _vault(request),
                comment=text(data, "comment"),
                base=text(data, "base") or None,
            )
            return _applied_redirect(applied)
        preview = await config.preview(document, environ(), _vault(request))
    except UnigateError as error:
        return await _config_page(
            request,
            status_code=error.status,
            document=document,
            errors=errors_of(error),
            comment=text(data, "comment"),
        )
    return await _config_page(request, document=document, preview=preview, comment=text(data, "comment"))


@post("/config/versions/{version:int}/rollback", status_code=HTTP_303_SEE_OTHER)
async def config_rollback(
    request: Request[Any, Any, Any], me: Principal, version: int
) -> Template | Redirect:
    try:
        applied = await config.rollback(me, version, environ(), _vault(request))
    except UnigateError as error:
        return await _config_page(request, status_code=error.status, errors=errors_of(error))
    return _applied_redirect(applied)


PAGES: list[Any] = [
    dashboard,
    connections_page,
    save_connection,
    test_connection,
    delete_connection,
    apis_page,
    plans_page,
    save_plan,
    delete_plan,
    subscriptions_page,
    subscription_action,
    consumers_page,
    create_consumer,
    consumer_action,
    keys_page,
    revoke_key,
    accounts_page,
    account_action,
    create_token,
    revoke_token,
    audit_page,
    config_page,
    export_config,
    config_action,
    config_rollback,
]
