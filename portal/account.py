"""Signing in and out, signing up, and choosing the language: the public edge of /portal."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Response, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import Forbidden, RateLimited, Unauthorized, UnigateError
from portal.auth import developer_or_admin, principal_of, sign_in, sign_out
from portal.forms import Form, errors_of, safe_next, text
from portal.i18n import LOCALES
from portal.services import accounts
from portal.services.principal import Principal
from portal.throttle import SignInThrottle
from portal.web import LOCALE_COOKIE, page

NOTICES = {"awaiting_approval": "Your account was created and waits for an administrator's approval."}


def _home(principal: Principal) -> str:
    return "/admin" if principal.is_admin else "/portal"


@get("/login", name="login")
async def login_page(
    request: Request[Any, Any, Any], next: str = "", notice: str = ""
) -> Template | Redirect:
    principal = await principal_of(request)
    if principal is not None:
        return Redirect(safe_next(next, _home(principal)))
    return page(
        request,
        "login.html",
        title="Sign in",
        next=next,
        username="",
        errors={},
        notice=NOTICES.get(notice, ""),
    )


@post("/login", status_code=HTTP_303_SEE_OTHER)
async def login(request: Request[Any, Any, Any], data: Form, throttle: SignInThrottle) -> Template | Redirect:
    username, password = text(data, "username"), str(data.get("password", ""))
    address = _address(request, throttle)
    try:
        await throttle.check(address, username)
        try:
            principal = await accounts.authenticate(username, password)
        except Unauthorized:
            await throttle.failed(address, username)
            raise
    except (Unauthorized, Forbidden, RateLimited) as error:
        return page(
            request,
            "login.html",
            status_code=error.status,
            title="Sign in",
            next=text(data, "next"),
            username=username,
            errors={"_": error.detail},
            notice="",
            # Throttled: say when to come back, as every other 429 of the gateway does.
            headers=error.headers,
        )
    await sign_in(request, principal)
    return Redirect(safe_next(text(data, "next"), _home(principal)), status_code=HTTP_303_SEE_OTHER)


def _address(request: Request[Any, Any, Any], throttle: SignInThrottle) -> str:
    return throttle.address(
        request.client.host if request.client else None, request.headers.get("x-forwarded-for")
    )


@post("/logout", status_code=HTTP_303_SEE_OTHER)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    sign_out(request)
    return Redirect("/portal/login", status_code=HTTP_303_SEE_OTHER)


@get("/signup")
async def signup_page(request: Request[Any, Any, Any]) -> Template:
    settings = request.app.state.settings
    return page(
        request, "signup.html", title="Sign up", form={}, errors={}, approval=settings.signup_approval
    )


@post("/signup", status_code=HTTP_303_SEE_OTHER)
async def signup(
    request: Request[Any, Any, Any], data: Form, throttle: SignInThrottle
) -> Template | Redirect:
    settings = request.app.state.settings
    try:
        address = _address(request, throttle)
        await throttle.check_signup(address)
        account = await accounts.signup(
            text(data, "username"),
            str(data.get("password", "")),
            email=text(data, "email"),
            locale=request.cookies.get(LOCALE_COOKIE, ""),
            approval_required=settings.signup_approval,
        )
    except UnigateError as error:
        return page(
            request,
            "signup.html",
            status_code=error.status,
            title="Sign up",
            form={k: v for k, v in data.items() if k != "password"},
            errors=errors_of(error),
            approval=settings.signup_approval,
            headers=error.headers,  # throttled: when to come back
        )
    await throttle.signed_up(address)
    if account["status"] != "active":
        return Redirect("/portal/login?notice=awaiting_approval", status_code=HTTP_303_SEE_OTHER)
    await sign_in(request, await accounts.authenticate(account["username"], str(data.get("password", ""))))
    return Redirect("/portal", status_code=HTTP_303_SEE_OTHER)


@post("/locale", status_code=HTTP_303_SEE_OTHER)
async def choose_locale(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Remembered on the account when signed in, and in a cookie for the sign-in pages."""
    locale = text(data, "locale")
    if locale not in LOCALES:
        locale = request.app.state.settings.default_locale
    principal = await principal_of(request)
    if principal is not None:
        await accounts.set_locale(principal, locale)
    response = Redirect(safe_next(text(data, "next"), "/portal"), status_code=HTTP_303_SEE_OTHER)
    response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


async def _account_page(
    request: Request[Any, Any, Any], me: Principal, status_code: int = 200, **extra: Any
) -> Template:
    extra.setdefault("errors", {})
    account = await accounts.get_account(me.account_id or 0)
    return page(request, "account.html", status_code=status_code, title="Account", account=account, **extra)


@get("/account", guards=[developer_or_admin])
async def account_page(request: Request[Any, Any, Any], me: Principal) -> Template:
    return await _account_page(request, me)


@post("/account/password", guards=[developer_or_admin], status_code=200)
async def change_password(request: Request[Any, Any, Any], me: Principal, data: Form) -> Template:
    """Change one's own password; other sessions end, this one continues under a fresh id."""
    if me.via_token:
        raise Forbidden("sign in with your password to change it")
    try:
        await accounts.change_password(
            me, str(data.get("current_password", "")), str(data.get("new_password", ""))
        )
    except UnigateError as error:
        return await _account_page(request, me, status_code=error.status, errors=errors_of(error))
    await sign_in(request, me)
    return await _account_page(request, me, password_changed=True)


PAGES = [login_page, login, logout, signup_page, signup, choose_locale, account_page, change_password]
