"""Policy: which connection a request goes to, checked once: named (`X-Connection`) or the application's
default, and open or granted to the application (gateway.store.snapshot.resolve_connection).

It runs right after Authorize and before the cache, so a revoked, closed or deleted connection is refused
before a cached answer could be replayed. What it resolves (`ctx.connection`, and `ctx.tracking` for a
stockout's tracking) is what the handler calls, what the cache key holds and what metering labels.
"""

from __future__ import annotations

from gateway.errors import InvalidParameter
from gateway.store.snapshot import resolve_connection
from policies.chain import Context, Gate

# The headers naming a connection: sent twice, the gateway cannot know which one the caller meant.
CONNECTION_HEADERS = ((b"x-connection", "X-Connection"), (b"x-tracking-connection", "X-Tracking-Connection"))


def tracks(ctx: Context) -> bool:
    """GET /v1/stockouts/{no}/tracking: also goes to a tracking connection."""
    return ctx.api == "stockouts" and ctx.path.endswith("/tracking") and ctx.path.count("/") == 4


class ResolveConnection(Gate):
    """Policy: resolve and check the request's connection(s) against the request's snapshot."""

    def before(self, ctx: Context) -> None:
        consumer = ctx.consumer
        if consumer is None or ctx.api is None:
            return
        headers = ctx.headers
        # `ctx.headers` keeps the last of a repeated header: only when it is shorter than the raw list was
        # a header repeated, so the common request pays one length comparison for this check.
        if len(headers) != len(ctx.scope["headers"]):
            _refuse_repeated(ctx)
        connections = ctx.snapshot.connections
        ctx.connection = resolve_connection(connections, consumer, ctx.api, headers.get("x-connection"))
        if tracks(ctx):
            ctx.tracking = resolve_connection(
                connections,
                consumer,
                "logistics",
                headers.get("x-tracking-connection"),
                "X-Tracking-Connection",
            )


def _refuse_repeated(ctx: Context) -> None:
    for raw, header in CONNECTION_HEADERS:
        if sum(1 for name, _ in ctx.scope["headers"] if name.lower() == raw) > 1:
            raise InvalidParameter(header, f"{header} is given more than once; send one connection name")
