"""The one policy middleware: a fixed list of policies, each wrapping the next, around every /v1 request.

A policy is an async callable `(ctx, call_next)`: it may refuse the request by raising a
`UnigateError` (answered here as problem+json), add response headers to `ctx.response_headers`,
wrap `ctx.send` to see the response, or answer itself without calling `call_next`. The order is
fixed in `policies.build_chain` and documented in docs/policies.md.

A policy that only looks at the request before passing it on is a `Gate` (its `before(ctx)`): the
chain runs consecutive gates in one flat loop instead of nesting a call per policy, since every
nested frame is walked again each time the request waits (for Redis, for the backend).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway import metrics
from gateway.errors import PROBLEM_CODE, PROBLEM_JSON, UnigateError, problem_json, request_id_from
from gateway.head import HEAD_KEY
from gateway.store.snapshot import ConnectionEntry, ConsumerEntry, KeyEntry, OAuthClientEntry, Snapshot

if TYPE_CHECKING:  # the policies that define these import this module
    from policies.authorize import EffectivePlan
    from policies.counters import Check
    from policies.ipfilter import Proxies

ASGIApp = Callable[..., Awaitable[None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
access_log = logging.getLogger("unigate.access")
app_log = logging.getLogger("unigate.app")
READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))

# Paths without an access line: probes and scrapes (every few seconds, from the balancer and Prometheus)
# and static files, whose lines would bury the requests someone came to the log for.
UNLOGGED = ("/healthz", "/readyz", "/metrics", "/static/")

ACTOR = "actor"  # in scope["state"]: the portal account or admin token's account acting (portal/auth.py)

# The unified API a path belongs to, and the scope reading or writing it needs.
APIS = ("stockouts", "orders", "logistics")


@dataclass(slots=True)
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
    tally: Sequence[Check] = ()  # counters this request must fit (RateLimit, Quota)
    priority: int = 0
    # The connection the request goes to, and a stockout tracking's tracking connection, resolved and
    # checked once (policies/connection.py): the handler, the cache key and metering all use these.
    connection: ConnectionEntry | None = None
    tracking: ConnectionEntry | None = None
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


Step = Callable[[Context], Awaitable[None]]


class Policy(Protocol):
    async def __call__(self, ctx: Context, call_next: Step) -> None: ...


class Gate:
    """A policy that checks (and may note things on `ctx`) before the request goes on, and does nothing after.

    Subclasses define `before(ctx)`, plain or async; it refuses by raising. Called as a policy, it runs
    `before` then `call_next`; in the chain, consecutive gates run in one loop (see `compose`).
    """

    def before(self, ctx: Context) -> Awaitable[None] | None:
        raise NotImplementedError

    async def __call__(self, ctx: Context, call_next: Step) -> None:
        pending = self.before(ctx)
        if pending is not None:
            await pending
        await call_next(ctx)


def compose(policies: Sequence[Policy], last: Step) -> Step:
    """The chain as one callable, built once: wrappers nest, runs of gates are flat loops, and a policy
    that says it has nothing to do in this configuration (`inert`, e.g. a cache with no API cached) is
    left out."""
    step = last
    gates: list[Gate] = []
    for policy in reversed(policies):
        if getattr(policy, "inert", False):
            continue
        if isinstance(policy, Gate):
            gates.insert(0, policy)
            continue
        if gates:
            step, gates = _gates(gates, step), []
        step = functools.partial(policy, call_next=step)
    return _gates(gates, step) if gates else step


def _gates(gates: Sequence[Gate], call_next: Step) -> Step:
    sync = tuple(gate.before for gate in gates if not inspect.iscoroutinefunction(gate.before))
    if len(sync) == len(gates):

        async def run_sync(ctx: Context) -> None:
            for before in sync:
                before(ctx)
            await call_next(ctx)

        return run_sync
    befores = tuple((gate.before, inspect.iscoroutinefunction(gate.before)) for gate in gates)

    async def run(ctx: Context) -> None:
        for before, awaited in befores:
            if awaited:
                await before(ctx)  # type: ignore[misc]
            else:
                before(ctx)
        await call_next(ctx)

    return run


def api_of(method: str, path: str) -> tuple[str | None, str | None]:
    """(`orders`, `orders:write`) for POST /v1/orders; (None, None) outside the unified API."""
    if not path.startswith("/v1/"):
        return None, None
    api = path[4:].split("/", 1)[0]
    if api not in APIS:
        return None, None
    return api, _SCOPES[api, method in READ_METHODS]


_SCOPES = {(api, read): f"{api}:{'read' if read else 'write'}" for api in APIS for read in (True, False)}


class PolicyChain:
    """ASGI middleware running the policies for unified API paths; other paths get a request id only.
    Each request but those under UNLOGGED gets one `unigate.access` line, with the caller's address as the
    trusted proxies forwarded it (`proxies`; the peer when there are none)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        snapshot: Callable[[], Snapshot],
        policies: Sequence[Policy],
        proxies: Proxies,
    ) -> None:
        self.app = app
        self.snapshot = snapshot
        self.policies = tuple(policies)
        self.proxies = proxies
        self._run = compose(self.policies, self._handle)

    async def _handle(self, ctx: Context) -> None:
        state = ctx.scope["state"]
        state["consumer"] = ctx.consumer
        state["granted_scopes"] = ctx.granted_scopes  # policies.pii.may_read in handlers
        state["connection"], state["tracking_connection"] = ctx.connection, ctx.tracking
        try:
            await self.app(ctx.scope, ctx.receive, ctx.send)
        except UnigateError as error:
            # Past the policies (a handler answering without Litestar's error handlers, e.g. the fast
            # reads): log a failure as the app's handler does (gateway.logs masks personal data).
            if error.status >= 500:
                app_log.warning(
                    "request failed",
                    extra={"code": error.code, "detail": error.detail, "request_id": state.get("request_id")},
                )
            raise

    async def __call__(self, scope: dict[str, Any], receive: ASGIApp, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = request_id_from(headers.get("x-request-id"))
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
        upstream: list[float] | None = None
        try:
            if api is None:
                await self.app(scope, receive, ctx.send)
            else:
                upstream = [0.0]  # what the backend calls of this request took (gateway.metrics)
                metrics.request_upstream_seconds.set(upstream)
                await self._run(ctx)
        except UnigateError as error:
            if ctx.status:  # the response has started: nothing more can be said to the caller
                raise
            scope["state"][PROBLEM_CODE] = error.code
            await send_problem(ctx.send, error, request_id)
        finally:
            # The wrappers of `send` (this one, metering's) hold `ctx`: unhooked, the request's objects
            # go when it ends instead of waiting, as a reference cycle, for the garbage collector.
            ctx.send = send
        if access_log.isEnabledFor(logging.INFO) and (api is not None or not ctx.path.startswith(UNLOGGED)):
            self._log(ctx, upstream)

    def _log(self, ctx: Context, upstream: list[float] | None) -> None:
        state = ctx.scope["state"]
        address = self.proxies.client(ctx.client_ip, ctx.headers.get("x-forwarded-for"))
        access_log.info(
            "request",
            extra={
                "request_id": ctx.request_id,
                # A HEAD runs as its GET (gateway/head.py); the log says what the caller sent.
                "method": "HEAD" if state.get(HEAD_KEY) else ctx.method,
                "path": ctx.path,
                "status": ctx.status,
                "code": state.get(PROBLEM_CODE),  # a refusal's or failure's problem code
                "consumer": ctx.consumer.name if ctx.consumer else None,
                "account": state.get(ACTOR),
                "client": str(address) if address is not None else None,
                "duration_ms": round((time.perf_counter() - ctx.started) * 1000, 2),
                # Of duration_ms, the time spent waiting on backends (all attempts, retries included).
                "upstream_ms": round(upstream[0] * 1000, 2) if upstream is not None else None,
            },
        )


async def send_problem(send: Send, error: UnigateError, request_id: str) -> None:
    body = problem_json(error, request_id)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
