"""Rendering pages: the context every template gets, the locale, and errors shown as pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from gateway.errors import Forbidden, Unauthorized, UnigateError
from portal import nav
from portal.forms import safe_next
from portal.i18n import LOCALE_NAMES, LOCALES, translate
from portal.services.principal import Principal

LOCALE_COOKIE = "unigate_locale"


def locale_of(request: Request[Any, Any, Any]) -> str:
    """The signed-in account's language, else the one picked on the sign-in page, else the default."""
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal and principal.locale in LOCALES:
        return principal.locale
    chosen = request.cookies.get(LOCALE_COOKIE, "")
    if chosen in LOCALES:
        return chosen
    return str(request.app.state.settings.default_locale)


def t(request: Request[Any, Any, Any], text: str, **values: Any) -> str:
    return translate(locale_of(request), text, **values)


def page(
    request: Request[Any, Any, Any],
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A full page, or for an htmx request that targets a fragment, the same template (its blocks
    decide what to draw)."""
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    return Template(
        template_name=template,
        status_code=status_code,
        headers=headers,
        context={
            "me": principal,
            "locale": locale_of(request),
            "locales": LOCALE_NAMES,
            "developer_nav": nav.entries("developer") if principal else [],
            "admin_nav": nav.entries("admin") if principal and principal.is_admin else [],
            "path": request.url.path,
            **context,
        },
    )


def template_translate(context: Any, text: str, **values: Any) -> str:
    """`{{ _("Sign in") }}` in templates."""
    return translate(context.get("locale") or "zh", text, **values)


def scheme_lease(request: Request[Any, Any, Any]) -> float:
    """Seconds a silent scheme run or worker is still taken as alive (UNIGATE_SCHEME_LEASE_SECONDS)."""
    return float(request.app.state.settings.scheme_lease_seconds)


def _back_to(request: Request[Any, Any, Any]) -> str:
    """The page to return to after signing in: the one asked for, or for a form sent (a POST has no page
    of its own: signing in and then GETting its address would be refused) the page the form was on."""
    if request.method in ("GET", "HEAD"):
        return request.url.path
    came_from = urlsplit(request.headers.get("hx-current-url") or request.headers.get("referer") or "")
    if came_from.netloc == request.url.netloc:  # safe_next refuses what is not a path of this site
        return safe_next(came_from.path, "")
    return ""


def login_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    back = _back_to(request)
    target = f"/portal/login?next={quote(back, safe='/')}" if back else "/portal/login"
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the fragment; tell it to load the whole page instead.
        return Response(content=b"", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


def html_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors on pages: sign-in first for the anonymous, otherwise a page saying what went wrong."""
    if isinstance(exc, Unauthorized | NotAuthorizedException):
        return login_redirect(request)
    if isinstance(exc, UnigateError):
        status, title, detail = exc.status, exc.title, exc.detail
    elif isinstance(exc, PermissionDeniedException):
        status, title = 403, Forbidden.title
        detail = "the form expired or came from another site (CSRF check); reload the page and try again"
    elif isinstance(exc, HTTPException):
        status, title, detail = exc.status_code, str(exc.detail), str(exc.detail)
    else:
        raise exc
    return page(request, "error.html", status_code=status, title=title, detail=detail)
