"""The management plane as mounted into the gateway: portal pages, admin pages and the management API.

Routes live in four sections, each a Litestar Router carrying the session and CSRF middleware:

    /portal      developer pages (HTML; sign-in and sign-up are public, the rest need a session)
    /admin       admin pages (HTML; `admin_only` on the whole router)
    /portal/api  developer JSON API (session or admin token)
    /admin/api   management REST API (admin session or admin token; `admin_only` on the router)

To add a page: write handlers in your module (paths relative to the section), list them below
under their section, put templates in `<your package>/templates/` (found automatically; extend
"base.html"), add menu entries with `portal.nav.register` and Chinese strings with
`portal.i18n.register`. tests/portal/test_isolation.py walks the route table, so a new admin route
is checked for refusing developers without anyone writing a test for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar_htmx import HTMXRequest

from gateway.errors import InvalidParameter, NotFound, UnigateError
from gateway.settings import Settings
from policies.ipfilter import Proxies
from portal import sessions
from portal.auth import admin_only, developer_or_admin, provide_me
from portal.throttle import SignInThrottle
from portal.web import html_error, template_translate

HERE = Path(__file__).resolve().parent
# Where the portal draws pages (errors as pages) and where its JSON APIs answer (errors as problem+json).
PAGES, APIS = ("/portal", "/admin"), ("/portal/api", "/admin/api")


def is_page(path: str) -> bool:
    """Whether `path` is the portal's to draw as a page (gateway/app.py asks for paths no route takes)."""
    return _under(path, PAGES) and not _under(path, APIS)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in prefixes)


ADMIN_SECURITY: list[dict[str, list[str]]] = [{"adminToken": []}, {"session": []}]


def ids_stored(settings: Settings) -> Callable[[Request[Any, Any, Any]], None]:
    """A before_request hook: a whole number the database cannot hold never reaches a query (SQLite's driver
    raises OverflowError past 64 bits, asyncpg a DataError past the 32 bits of PostgreSQL's SERIAL/INTEGER
    columns: a 500 with a traceback). As a path id (`{...:int}`, always a row id) it is no row: 404. As an
    int query parameter (an offset, a cursor, a version) it is bad input: 400 naming it. Runs after the
    guards, so a caller who may not see the route still learns that first."""
    bits = 32 if settings.is_postgres else 64
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    digits = len(str(high))

    def check(request: Request[Any, Any, Any]) -> None:
        for name, value in request.path_params.items():
            if isinstance(value, int) and not low <= value <= high:
                raise NotFound(f"no {name.removesuffix('_id')} {value}: ids are at most {high}")
        if not request.query_params:
            return
        fields = request.route_handler.parsed_fn_signature.parameters
        for name, text in request.query_params.multi_items():
            field, number = fields.get(name), text.strip()
            if field is None or not _INTEGER.fullmatch(number):
                continue
            # More digits than the largest holds is past it, and int() of thousands of digits would raise.
            if len(number.lstrip("+-")) <= digits and low <= int(number) <= high:
                continue
            if field.is_subclass_of(int) or any(inner.is_subclass_of(int) for inner in field.inner_types):
                shown = number if len(number) <= 40 else f"{number[:20]}…"
                raise InvalidParameter(name, f"{name}: {shown} is past the largest number stored, {high}")

    return check


_INTEGER = re.compile(r"[+-]?\d+")


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/portal")


def _section(
    path: str,
    handlers: list[Any],
    settings: Settings,
    *,
    html: bool,
    provides: dict[str, Provide] | None = None,
    **options: Any,
) -> Router:
    return Router(
        path=path,
        route_handlers=handlers,
        middleware=sessions.middleware(settings),
        dependencies={"me": Provide(provide_me), **(provides or {})},
        request_class=HTMXRequest,
        # Pages show errors as pages; the APIs keep the app's problem+json handlers.
        exception_handlers={UnigateError: html_error, HTTPException: html_error} if html else {},
        include_in_schema=not html,
        # Pages and answers carry keys, secrets shown once and personal data: no cache (the browser's,
        # a proxy's, or the back button after sign-out) may keep them.
        cache_control=CacheControlHeader(no_store=True),
        before_request=ids_stored(settings),
        **options,
    )


def portal_routes(settings: Settings) -> list[Any]:
    """Route handlers (routers) of the portal and the management API."""
    from portal import account, admin_api, admin_pages, developer, developer_api, schemes

    throttle = SignInThrottle(settings.redis_url, Proxies(settings.trusted_proxies))

    return [
        root,
        _section(
            PAGES[0],
            [*account.PAGES, *developer.PAGES],
            settings,
            html=True,
            provides={"throttle": Provide(lambda: throttle, sync_to_thread=False)},
        ),
        _section(PAGES[1], [*admin_pages.PAGES, *schemes.PAGES], settings, html=True, guards=[admin_only]),
        _section(
            APIS[0],
            developer_api.ROUTES,
            settings,
            html=False,
            guards=[developer_or_admin],
            tags=["portal"],
        ),
        _section(
            APIS[1],
            [*admin_api.ROUTES, *schemes.API],
            settings,
            html=False,
            guards=[admin_only],
            tags=["admin"],
            security=ADMIN_SECURITY,
        ),
        schemes.STATIC,
        create_static_files_router(
            path="/static/portal", directories=[HERE / "static"], include_in_schema=False
        ),
    ]


def portal_template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over portal/templates and every portal/<feature>/templates folder."""
    folders: list[Path | PathLike[Any] | str] = [
        HERE / "templates",
        *sorted(p for p in HERE.glob("*/templates") if p.is_dir()),
    ]

    def callbacks(engine: JinjaTemplateEngine) -> None:
        engine.register_template_callable("_", template_translate)
        # Vendors answer in Chinese: `tojson` keeps it readable instead of \uXXXX escapes. Jinja's
        # htmlsafe_json_dumps still escapes <, >, & and ', so the output stays safe inside <script>.
        engine.engine.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}

    return TemplateConfig(directory=folders, engine=JinjaTemplateEngine, engine_callback=callbacks)
