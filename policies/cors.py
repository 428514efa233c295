"""Policy: CORS per unified API, so a browser app on an allowed origin can call it and read the answer.

Schema: `CorsConfig` (per API, set with `unigate apis set`). Handler: `Cors` runs first in the
chain: it answers preflights itself (204, or 403 `cors_rejected`), and on an allowed origin adds
the CORS headers to every response — errors included, so a browser can read a 401 or a 429.
`Unrouted` gives the same headers to the answers on /v1 paths that no route took (404, 405), which
never reach the chain, and answers their preflights.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from gateway.errors import CorsRejected
from gateway.store.snapshot import Snapshot
from policies.chain import APIS, Context
from policies.config import invalid, parse

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Connection",
    "X-Tracking-Connection",
    "Idempotency-Key",
    "X-Request-ID",
]
DEFAULT_EXPOSE_HEADERS = [
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "X-Request-ID",
    "X-Cache",
]


class CorsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which origins may call an API from a browser, with what; no origins = CORS off (the default)."""

    allow_origins: list[str] = []  # "https://shop.example.com", or "*" for any
    allow_methods: list[str] = msgspec.field(default_factory=lambda: ["GET", "POST"])
    allow_headers: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ALLOW_HEADERS))
    expose_headers: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_EXPOSE_HEADERS))
    allow_credentials: bool = False
    max_age: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 600


def parse_cors(raw: Mapping[str, Any], field: str = "cors") -> CorsConfig:
    config = parse(CorsConfig, dict(raw), field)
    for n, origin in enumerate(config.allow_origins):
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise invalid(
                f"{field}.allow_origins[{n}]",
                f"{origin!r} is not an origin: write scheme://host[:port], like https://shop.example.com",
            )
    for n, method in enumerate(config.allow_methods):
        if method.upper() not in METHODS:
            raise invalid(f"{field}.allow_methods[{n}]", f"{method!r} is not one of {', '.join(METHODS)}")
    if config.allow_credentials and "*" in config.allow_origins:
        raise invalid(
            f"{field}.allow_credentials",
            "browsers refuse credentials with any origin (*): list the origins, or turn credentials off",
        )
    return msgspec.structs.replace(
        config,
        allow_origins=[o.rstrip("/") for o in config.allow_origins],
        allow_methods=[m.upper() for m in config.allow_methods],
    )


@dataclass(frozen=True, slots=True)
class _Rules:
    origins: frozenset[str]
    any_origin: bool
    methods: frozenset[str]
    headers: frozenset[str]  # lower case
    credentials: bool
    preflight: tuple[tuple[bytes, bytes], ...]  # the constant part of a preflight answer
    actual: tuple[tuple[bytes, bytes], ...]  # the constant part of any other answer

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        echoed = b"*" if self.any_origin and not self.credentials else origin.encode("latin-1")
        return [(b"access-control-allow-origin", echoed), (b"vary", b"Origin")]


def _compile(config: CorsConfig) -> _Rules:
    credentials = [(b"access-control-allow-credentials", b"true")] if config.allow_credentials else []
    return _Rules(
        origins=frozenset(o for o in config.allow_origins if o != "*"),
        any_origin="*" in config.allow_origins,
        # A page that may GET may HEAD (the gateway answers HEAD wherever GET, gateway/head.py); browsers
        # take HEAD as allowed without it being listed, as long as the preflight succeeds.
        methods=frozenset([*config.allow_methods, *(["HEAD"] if "GET" in config.allow_methods else [])]),
        headers=frozenset(h.lower() for h in config.allow_headers),
        credentials=config.allow_credentials,
        preflight=(
            (b"access-control-allow-methods", ", ".join(config.allow_methods).encode()),
            (b"access-control-allow-headers", ", ".join(config.allow_headers).encode()),
            (b"access-control-max-age", str(config.max_age).encode()),
            *credentials,
        ),
        actual=(
            *([(b"access-control-expose-headers", ", ".join(config.expose_headers).encode())]
              if config.expose_headers else []),
            *credentials,
        ),
    )  # fmt: skip


class Cors:
    """Policy: preflights answered here; CORS headers on every answer to an allowed origin."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._rules: dict[str, _Rules] = {}

    def rules_for(self, snapshot: Snapshot, api: str) -> _Rules | None:
        return self.compiled(snapshot).get(api)

    def compiled(self, snapshot: Snapshot) -> dict[str, _Rules]:
        if snapshot is not self._snapshot:
            self._rules = {
                entry.api: _compile(parse_cors(entry.cors))
                for entry in snapshot.api_policies.values()
                if entry.cors.get("allow_origins")
            }
            self._snapshot = snapshot
        return self._rules

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None:
        origin = ctx.headers.get("origin")
        if origin is None:
            await call_next(ctx)
            return
        assert ctx.api is not None
        rules = self.rules_for(ctx.snapshot, ctx.api)
        requested = ctx.headers.get("access-control-request-method")
        if ctx.method == "OPTIONS" and requested is not None:
            if rules is None:
                raise CorsRejected(f"the {ctx.api} API does not accept calls from web pages on other origins")
            if not rules.allows(origin):
                raise CorsRejected(f"the origin {origin} may not call the {ctx.api} API")
            headers = _preflight(rules, origin, requested, ctx.headers.get("access-control-request-headers"))
            await ctx.send({"type": "http.response.start", "status": 204, "headers": headers})
            await ctx.send({"type": "http.response.body", "body": b""})
            return
        if rules is not None and rules.allows(origin):
            ctx.response_headers.extend([*rules.origin_headers(origin), *rules.actual])
        await call_next(ctx)


def _preflight(rules: _Rules, origin: str, method: str, wanted: str | None) -> list[tuple[bytes, bytes]]:
    """The headers of a 204 preflight answer from an origin `rules` allow, or CorsRejected."""
    if method.upper() not in rules.methods:
        raise CorsRejected(f"the method {method} is not allowed from other origins")
    refused = [
        h.strip() for h in (wanted or "").split(",") if h.strip() and h.strip().lower() not in rules.headers
    ]
    if refused:
        raise CorsRejected(f"the header(s) {', '.join(refused)} may not be sent from other origins")
    return [*rules.origin_headers(origin), *rules.preflight, (b"content-length", b"0")]


@dataclass(frozen=True, slots=True)
class Unrouted:
    """CORS for the answers on /v1 paths that no route took (404 `not_found`, 405 `method_not_allowed`):
    Litestar answers them before any middleware, so the chain's `Cors` never sees them, and a browser
    would show its page an opaque CORS failure instead of the problem. The rule (docs/policies.md): an
    origin allowed for the API the path names gets that API's headers; for a path naming no API, or an
    API that does not allow the origin, an origin some API allows gets the first such API's headers
    (stockouts, orders, logistics): a page the admin lets call the gateway may read why a call went
    nowhere. An origin no API allows gets none, as from the chain."""

    cors: Cors
    snapshot: Callable[[], Snapshot]

    def _rules(self, path: str, origin: str) -> _Rules | None:
        if not _on_v1(path):
            return None
        compiled = self.cors.compiled(self.snapshot())
        named = path[4:].split("/", 1)[0]
        candidates: Iterable[str] = (named, *APIS) if named in APIS else APIS
        return next(
            (rules for api in candidates if (rules := compiled.get(api)) and rules.allows(origin)), None
        )

    def headers(self, path: str, request_headers: Mapping[str, str]) -> dict[str, str]:
        """The CORS headers for an unrouted answer on `path` (none for a foreign origin or another path)."""
        origin = request_headers.get("origin")
        if origin is None or (rules := self._rules(path, origin)) is None:
            return {}
        return _as_str((*rules.origin_headers(origin), *rules.actual))

    def preflight(self, path: str, request_headers: Mapping[str, str]) -> dict[str, str] | None:
        """The headers of a 204 answer to a preflight for an unrouted /v1 path, so the page goes on to send
        its call and can read the 404 or 405; None if this is no preflight on /v1; CorsRejected as from the
        chain for an origin, method or header not allowed."""
        origin = request_headers.get("origin")
        method = request_headers.get("access-control-request-method")
        if origin is None or method is None or not _on_v1(path):
            return None
        rules = self._rules(path, origin)
        if rules is None:
            raise CorsRejected(f"the origin {origin} may not call this gateway's APIs")
        wanted = request_headers.get("access-control-request-headers")
        return _as_str(_preflight(rules, origin, method, wanted))


def _as_str(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in pairs}


def _on_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")
