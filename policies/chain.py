"""The one policy middleware: a fixed list of policies, each wrapping the next, around every /v1 request.

A policy is an async callable `(ctx, call_next)`: it may refuse the request by raising a
`UnigateError` (answered here as problem+json), add response headers to `ctx.response_headers`,
wrap `ctx.send` to see the response, or answer itself without calling `call_next`. The order is
fixed in `policies.build_chain` and documented in docs/policies.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import PROBLEM_JSON, UnigateError, problem_json
from gateway.store.snapshot import ConsumerEntry, KeyEntry, OAuthClientEntry, Snapshot

if TYPE_CHECKING:  # the policies that define these import this module
    from policies.authorize import EffectivePlan
    from policies.counters import Check

ASGIApp = Callable[..., Awaitable[None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
access_log = logging.getLogger("unigate.access")

# The unified API a path belongs to, and the scope reading or writing it needs.
APIS = ("stockouts", "orders", "logistics")


@dataclass
class Context:
    """What the policies know about one request; built once, read and extended by each policy."""

    scope: dict[str, Any]
    receive: ASGIApp
    send: Send
    headers: dict[str, str]
    request_id: str
    snapshot: Snapshot
    api: str | None
    scope_needed: str | None
    key: KeyEntry | None = None
    consumer: ConsumerEntry | None = None
    granted_scopes: frozenset[str] | None = None  # None: a key, which may use every API it is allowed
    oauth_client: OAuthClientEntry | None = None  # set instead of `key` when a JWT identified the caller
    plan: EffectivePlan | None = None  # the subscription's plan with overrides (Authorize)
    tally: list[Check] = field(default_factory=list)  # counters this request must fit (RateLimit, Quota)
    priority: int = 0
    status: int = 0
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None


class Policy(Protocol):
    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[None]]) -> None: ...


def api_of(method: str, path: str) -> tuple[str | None, str | None]:
    """(`orders`, `orders:write`) for POST /v1/orders; (None, None) outside the unified API."""
    if not path.startswith("/v1/"):
        return None, None
    api = path[4:].split("/", 1)[0]
    if api not in APIS:
        return None, None
    return api, f"{api}:{'read' if method in ('GET', 'HEAD', 'OPTIONS') else 'write'}"


class PolicyChain:
    """ASGI middleware running the policies for unified API paths; other paths get a request id only."""

    def __init__(self, app: ASGIApp, *, snapshot: Callable[[], Snapshot], policies: Sequence[Policy]) -> None:
        self.app = app
        self.snapshot = snapshot
        self.policies = tuple(policies)

    async def __call__(self, scope: dict[str, Any], receive: ASGIApp, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        api, scope_needed = api_of(scope["method"], scope["path"])
        ctx = Context(scope, receive, send, headers, request_id, self.snapshot(), api, scope_needed)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *ctx.response_headers,
                ]
            await send(message)

        ctx.send = send_with_headers
        try:
            if api is None:
                await self.app(scope, receive, ctx.send)
            else:
                await self._run(ctx, 0)
        except UnigateError as error:
            if ctx.status:  # the response has started: nothing more can be said to the caller
                raise
            await send_problem(ctx.send, error, request_id)
        if api is not None:
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": ctx.method,
                    "path": ctx.path,
                    "status": ctx.status,
                    "consumer": ctx.consumer.name if ctx.consumer else None,
                    "duration_ms": round((time.perf_counter() - ctx.started) * 1000, 2),
                },
            )

    async def _run(self, ctx: Context, index: int) -> None:
        if index == len(self.policies):
            ctx.scope["state"]["consumer"] = ctx.consumer
            ctx.scope["state"]["granted_scopes"] = ctx.granted_scopes  # policies.pii.may_read in handlers
            await self.app(ctx.scope, ctx.receive, ctx.send)
            return
        await self.policies[index](ctx, lambda c: self._run(c, index + 1))


async def send_problem(send: Send, error: UnigateError, request_id: str) -> None:
    body = problem_json(error, request_id)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
