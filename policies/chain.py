"""The one policy middleware: request id, then identify the caller, for every unified API request.

Later policies (rate limits, quotas, admission) join `PolicyChain.check` in a fixed order.
Errors are answered here directly as problem+json, before any handler runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.errors import PROBLEM_JSON, UnigateError, problem_json
from gateway.store.snapshot import Snapshot
from policies.auth import authenticate, key_from_headers

ASGIApp = Callable[..., Any]
access_log = logging.getLogger("unigate.access")


class KeyUsage:
    """Last-use times of keys, kept in memory and flushed in batches off the hot path."""

    def __init__(self) -> None:
        self.pending: dict[int, datetime] = {}

    def record(self, key_id: int) -> None:
        self.pending[key_id] = datetime.now(UTC)

    def take(self) -> dict[int, datetime]:
        taken, self.pending = self.pending, {}
        return taken


class PolicyChain:
    def __init__(
        self,
        app: ASGIApp,
        *,
        snapshot: Callable[[], Snapshot],
        usage: KeyUsage,
        guarded_prefixes: tuple[str, ...] = ("/v1/",),
    ) -> None:
        self.app = app
        self.snapshot = snapshot
        self.usage = usage
        self.guarded_prefixes = guarded_prefixes

    async def __call__(self, scope: dict[str, Any], receive: ASGIApp, send: ASGIApp) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status_box = [0]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        consumer = None
        try:
            if scope["path"].startswith(self.guarded_prefixes):
                key = key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
                entry = authenticate(key, self.snapshot())
                self.usage.record(entry.id)
                consumer = entry.consumer
                state["consumer"] = consumer
        except UnigateError as error:
            await _send_problem(send_with_id, error, request_id)
        else:
            await self.app(scope, receive, send_with_id)
        access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status_box[0],
                "consumer": consumer.name if consumer else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )


async def _send_problem(send: ASGIApp, error: UnigateError, request_id: str) -> None:
    body = problem_json(error, request_id)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
