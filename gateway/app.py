"""The composition root: create_app(settings) -> Litestar, wiring store, policies, unified API and portal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.static_files import create_static_files_router
from redis.asyncio import Redis

from gateway import logs, metrics, redis_client
from gateway.errors import (
    PROBLEM_CODE,
    PROBLEM_JSON,
    InvalidParameter,
    UnigateError,
    problem_json,
    request_id_from,
)
from gateway.head import answer_head, answer_options, with_head
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.signals import keep_signals_between_runs
from gateway.store import engine as store_engine
from gateway.store.crypto import Vault
from gateway.store.manage import touch_keys
from gateway.store.snapshot import SnapshotHolder, current_version, publish_versions_with
from gateway.unified.fast import FastReads
from gateway.unified.routes import ROUTES
from gateway.upstream import Upstream
from policies import PolicyDeps, build_chain, close_chain
from policies.auth import KeyUsage
from policies.backend import LocalCaps, RedisCaps
from policies.chain import PolicyChain
from policies.cors import Cors, Unrouted
from policies.ipfilter import Proxies
from policies.metering import UsageRecorder
from policies.oauth import SCOPES, TokenServer
from policies.oauth_routes import oauth_routes
from policies.reload import Announcer, ReloadListener
from portal.app import is_page, portal_routes, portal_template_config
from portal.security_headers import SECURED_PATHS, SecurityHeaders, SwaggerPage
from portal.sessions import SESSION_COOKIE, cookie_name
from portal.web import html_error

log = logging.getLogger("unigate.app")
ASSETS = Path(__file__).resolve().parent.parent / "node_modules"
SWAGGER = "/static/vendor/swagger-ui-dist"
KEY_USAGE_FLUSH_SECONDS = 5.0


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    return request.scope.get("state", {}).get("request_id")  # type: ignore[no-any-return]


def _problem(request: Request[Any, Any, Any], error: UnigateError, cors: bool = True) -> Response[bytes]:
    headers = dict(error.headers)
    request_id = _request_id(request)
    if request_id is None:  # no route matched, so the policy chain never saw this request: the caller's
        # id is still theirs to quote (README: "yours, if you sent one"), and a page on an origin the chain
        # would answer may read the problem (policies.cors.Unrouted).
        request_id = headers["X-Request-ID"] = request_id_from(request.headers.get("x-request-id"))
        unrouted: Unrouted | None = request.app.state.unrouted_cors
        if cors and unrouted is not None:
            headers.update(unrouted.headers(request.scope["path"], request.headers))
    if error.status >= 500:  # with the id the caller quotes to support
        log.warning(
            "request failed", extra={"code": error.code, "detail": error.detail, "request_id": request_id}
        )
    request.scope.setdefault("state", {})[PROBLEM_CODE] = error.code  # for the access log line
    return Response(
        problem_json(error, request_id), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_problem(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's validation errors, re-said as one problem naming the first field at fault."""
    issues = exc.extra if isinstance(exc.extra, list) else []
    first = issues[0] if issues and isinstance(issues[0], dict) else {}
    field, message = _field_of(str(first.get("key") or ""), str(first.get("message") or exc.detail))
    return _problem(request, InvalidParameter(field, f"{field}: {message}"))


_MISSING = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`")
# Litestar's words for a parameter left out, which name it only in the message.
_MISSING_PARAMETER = re.compile(r"^Missing required (\w+) parameter '([^']+)'")


def _field_of(key: str, message: str) -> tuple[str, str]:
    """The dotted path of the field a validation message is about (`receiver.province`)."""
    if parameter := _MISSING_PARAMETER.match(message):
        return parameter.group(2), f"this {parameter.group(1)} parameter is required"
    # Litestar names the whole request body after the handler's parameter ("data").
    path = "" if key in ("", "body", "data") else key
    if missing := _MISSING.match(message):
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return (path or "body"), message


class _HttpProblem(UnigateError):
    def __init__(self, exc: HTTPException) -> None:
        super().__init__(str(exc.detail))
        self.status = exc.status_code  # type: ignore[misc]
        self.code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(  # type: ignore[misc]
            exc.status_code, "http_error"
        )
        # RFC 9457: the title is the short summary of the problem's type, the detail this occurrence.
        self.title = _phrase(exc.status_code)  # type: ignore[misc]
        # What Litestar says in headers stays said: a 405 must list the methods allowed (RFC 9110), HEAD
        # among them wherever GET is (gateway/head.py answers it; Litestar knows only declared methods).
        self.headers.update(exc.headers or {})
        allowed = self.headers.get("allow")
        if allowed:
            allowed = self.headers["allow"] = with_head(allowed)
        if exc.status_code == 405 and allowed:
            self.detail = f"this path takes {allowed}"  # type: ignore[misc]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def _http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code == 400 and str(exc.detail).startswith(
        ("JSON is malformed", "Input data was truncated")
    ):
        # Litestar's word for a body that does not parse: bad input like any other, naming the body.
        return _problem(request, InvalidParameter("body", f"body: {exc.detail}"))
    if exc.status_code == 404 and request.method == "OPTIONS":
        unrouted: Unrouted | None = request.app.state.unrouted_cors
        try:
            preflight = unrouted.preflight(request.scope["path"], request.headers) if unrouted else None
        except UnigateError as refused:  # as the chain refuses a preflight: without CORS headers
            return _problem(request, refused, cors=False)
        if preflight is not None:
            # A preflight for a /v1 path no route takes: allowed as the chain would allow it, so the page
            # sends its call and reads the 404 (with CORS headers) instead of an opaque CORS failure.
            request_id = request_id_from(request.headers.get("x-request-id"))
            return Response(b"", status_code=204, headers={**preflight, "X-Request-ID": request_id})
    if _portal_page(request):
        # No portal route took it (or its id is not a number): a browser gets the portal's error page.
        return html_error(request, exc)  # type: ignore[return-value]
    return _problem(request, _HttpProblem(exc))


def _portal_page(request: Request[Any, Any, Any]) -> bool:
    """A browser asking for a portal or admin page (not their JSON APIs)."""
    return "text/html" in request.headers.get("accept", "") and is_page(request.scope["path"])


def _internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error", extra={"request_id": _request_id(request)})
    return _problem(request, UnigateError("the gateway failed to handle this request; quote the request_id"))


class Gateway(Litestar):
    """The Litestar app, answering HEAD wherever it answers GET (gateway/head.py): Litestar routes a request
    before any middleware runs, so HEAD must become the GET before routing, here at the app's entry."""

    # Security headers on the portal, admin, /docs and static answers, error pages of unrouted paths
    # included (routed nowhere, they pass no router's middleware); create_app sets it.
    security_headers: SecurityHeaders | None = None

    def __call__(self, scope: Any, receive: Any, send: Any) -> Coroutine[Any, Any, None]:
        # Returns Litestar's coroutine rather than awaiting it: no frame of ours for every request to resume
        # through each time it waits (policies/chain.py says why that counts).
        if scope["type"] == "http" and scope["path"].startswith(SECURED_PATHS) and self.security_headers:
            send = self.security_headers.wrap(scope, send)
        if scope["type"] == "http" and scope["method"] in ("HEAD", "OPTIONS"):
            answer = answer_head if scope["method"] == "HEAD" else answer_options
            return answer(super().__call__, scope, receive, send)
        return Litestar.__call__(self, scope, receive, send)  # not super(): ~100 ns less on every request


@get("/healthz", include_in_schema=True, tags=["operations"], summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/metrics", tags=["operations"], summary="Prometheus metrics of this gateway process")
async def metrics_route() -> Response[bytes]:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@get(
    "/readyz",
    tags=["operations"],
    summary="Readiness: the database; Redis (degraded, still serving) and circuit breakers reported",
)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    checks: dict[str, str] = {}
    try:
        await current_version()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    redis: Redis | None = request.app.state.redis
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    # Only the database decides: without it this node cannot see a revoked key or a changed plan. Redis is
    # reported, not judged: without it each node counts limits alone (docs/policies.md) but serves, and as
    # every node shares one Redis, failing readiness on it would take the whole cluster out at once.
    # Breakers likewise: a failing backend is no reason to take this node out of service.
    ready = checks["database"] == "ok"
    status = "not ready" if not ready else "ready" if checks.get("redis", "ok") == "ok" else "degraded"
    breakers = request.app.state.runtime.upstream.breaker_states()
    body: dict[str, Any] = {"status": status, "checks": checks, "breakers": breakers}
    # Sealed values this node's UNIGATE_SECRET_KEY does not open: named, and the node stays in service (it
    # serves everything else; every node sharing the database would be taken out at once otherwise).
    if unreadable := request.app.state.runtime.snapshots.current.unreadable():
        checks["secret_key"] = "error: some sealed values do not open with this node's UNIGATE_SECRET_KEY"
        body["unreadable"] = unreadable
        if ready:
            body["status"] = "degraded"
    return Response(
        msgspec.json.encode(body), status_code=200 if ready else 503, media_type="application/json"
    )


def _reloading(
    snapshots: SnapshotHolder, others: Callable[[int], Awaitable[None]] | None
) -> Callable[[int], Awaitable[None]]:
    """A change this process saves (portal, admin API) is announced to the other nodes, then loaded here
    before its answer goes out, so the key or client made a moment ago works on the very next call to
    this node (the node's own announcement would come back over Redis a little later). A change saved
    inside a transaction (`config apply`) is announced once it has committed (store/engine.after_commit)."""

    async def announce(version: int) -> None:
        try:
            if others is not None:
                await others(version)
        finally:  # with Redis away this node still serves its own change at once
            await snapshots.refresh_if_changed()

    return announce


def create_app(settings: Settings) -> Litestar:
    logs.configure(settings.log_level)
    vault = Vault(settings.secret_key)
    snapshots = SnapshotHolder(vault, settings.config_poll_seconds)
    redis = redis_client.connect(settings)  # one client (and pool) per worker process, connected lazily
    upstream = Upstream(
        timeout_seconds=settings.upstream_timeout_seconds,
        retries=settings.upstream_retries,
        caps=RedisCaps(redis) if redis is not None else LocalCaps(),
    )
    runtime = Runtime(snapshots, upstream)
    usage = KeyUsage()
    recorder = UsageRecorder(settings.usage_timezone, settings.request_samples_per_consumer)
    engine = store_engine.make_engine(settings)
    store_engine.bind(engine)
    tokens = TokenServer(
        lambda: snapshots.current, issuer=settings.token_issuer, ttl_seconds=settings.token_ttl_seconds
    )
    reload = ReloadListener(redis, snapshots) if redis is not None else None
    chain = build_chain(
        PolicyDeps(settings=settings, snapshots=snapshots, redis=redis, usage=usage, recorder=recorder)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        keep_signals_between_runs(asyncio.get_running_loop())
        metrics.worker_started()
        await store_engine.start(engine)
        await snapshots.start()
        # Changes reach every node over Redis at once; the poll stays as a fallback.
        publish_versions_with(_reloading(snapshots, Announcer(redis) if redis is not None else None))
        if reload is not None:
            reload.start()
        app.state.redis = redis
        flusher = asyncio.create_task(_flush_key_usage(usage))
        metering = asyncio.create_task(_flush_metering(recorder, settings.metering_flush_seconds))
        try:
            yield
        finally:
            flusher.cancel()
            metering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            with contextlib.suppress(asyncio.CancelledError):
                await metering
            # The last usage is written if the database lets it; if not, that is said, and the rest of the
            # stop (connections, Redis, the pool) still happens.
            try:
                await touch_keys(usage.take())
                await recorder.flush()
            except Exception:
                log.exception("the last usage figures could not be written at stop; they are lost")
            publish_versions_with(None)
            if reload is not None:
                await reload.stop()
            await snapshots.stop()
            await upstream.close()
            await close_chain(chain)
            metrics.worker_stopped()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await store_engine.stop(engine)

    openapi = OpenAPIConfig(
        title="unigate",
        version="1.0.0",
        description="One API for orders, stockouts and tracking, whatever ERP or carrier is behind it.",
        path="/docs",
        render_plugins=[
            SwaggerPage(
                js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                path="/",
                favicon=f"<link rel='icon' type='image/png' href='{SWAGGER}/favicon-32x32.png'>",
            )
        ],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="ug_… API key"),
                "apiKeyHeader": SecurityScheme(
                    type="apiKey",
                    security_scheme_in="header",
                    name="X-API-Key",
                    description="the same ug_… API key, in the X-API-Key header",
                ),
                "oauth2": SecurityScheme(
                    type="oauth2",
                    description="OAuth2 client credentials: a short-lived JWT from /oauth/token",
                    flows=OAuthFlows(
                        client_credentials=OAuthFlow(
                            token_url="/oauth/token", scopes={scope: scope for scope in sorted(SCOPES)}
                        )
                    ),
                ),
                "adminToken": SecurityScheme(
                    type="http", scheme="bearer", description="uga_… admin token (`unigate admin token`)"
                ),
                "session": SecurityScheme(
                    type="apiKey",
                    security_scheme_in="cookie",
                    name=cookie_name(SESSION_COOKIE, settings),
                    description="portal sign-in",
                ),
            }
        ),
        # No default: each operation says how it is called (the /v1 ones in gateway/unified/routes.py), so
        # /healthz, /oauth/token and the like are not shown as needing an API key.
    )
    cors = next((policy for policy in chain if isinstance(policy, Cors)), None)
    proxies = Proxies(settings.trusted_proxies)  # whose X-Forwarded-* are believed
    app = Gateway(
        route_handlers=[
            healthz,
            readyz,
            metrics_route,
            *ROUTES,
            *oauth_routes(tokens, proxies, lambda: snapshots.current),
            *portal_routes(settings),
            create_static_files_router(path="/static/vendor", directories=[ASSETS], include_in_schema=False),
        ],
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(
                PolicyChain,  # type: ignore[arg-type]
                snapshot=lambda: snapshots.current,
                policies=chain,
                proxies=proxies,
            ),
            # Innermost: past the policy chain, the list reads skip Litestar's handler layer.
            *(
                [DefineMiddleware(FastReads, runtime=runtime, unexpected=_internal_problem)]
                if settings.fast_reads
                else []
            ),
        ],
        exception_handlers={
            UnigateError: _problem,
            ValidationException: _validation_problem,
            HTTPException: _http_problem,
            Exception: _internal_problem,
        },
        openapi_config=openapi,
        template_config=portal_template_config(),
        state=State(
            {
                "runtime": runtime,
                "settings": settings,
                "redis": None,
                "unrouted_cors": Unrouted(cors, lambda: snapshots.current) if cors is not None else None,
            }
        ),
        logging_config=None,
    )
    app.security_headers = SecurityHeaders(proxies)
    return app


async def _flush_key_usage(usage: KeyUsage) -> None:
    while True:
        await asyncio.sleep(KEY_USAGE_FLUSH_SECONDS)
        try:
            await touch_keys(usage.take())
        except Exception:
            log.exception("recording key usage failed")


async def _flush_metering(recorder: UsageRecorder, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await recorder.flush()
        except Exception:
            log.exception("recording usage failed; it is kept for the next flush")


def app_from_env() -> Litestar:
    """Entry point for granian (`gateway.app:app_from_env`, with --factory)."""
    import gc

    from gateway.settings import load_settings

    app = create_app(load_settings())
    # Everything built so far (modules, routes, compiled mappings, the app) lives as long as the worker:
    # frozen, the collector stops walking it on every full collection, which held the event loop long
    # enough to be the worst 1 % of requests: on bench/gateway_chain.py p99 93-117 ms -> 19-36 ms, and
    # 5-15 % less CPU per request.
    gc.collect()
    gc.freeze()
    return app
