"""The hot reads (GET /v1/stockouts, GET /v1/orders) answered without Litestar's handler layer.

Litestar still routes the request, and everything around the route still runs: the policy chain and the
exception handlers that turn errors into problems. What this middleware (the innermost) skips is the
handler layer itself: the signature model, the kwargs and dependency machinery and the response object,
a fifth of such a request's CPU time (bench/gateway_chain.py). routes.py stays the definition: the same
page functions answer, its handlers are what OpenAPI documents, and they answer when UNIGATE_FAST_READS
is off; tests/unified/test_fast_reads.py checks that both give the same answers and the same problems.
(Going round the router too saved ~2 us of ~390: not worth leaning on Litestar's internals for.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from gateway.errors import InvalidParameter, UnigateError
from gateway.runtime import Runtime
from gateway.unified.models import OrderStatus, StockoutStatus
from gateway.unified.routes import (
    ERROR_AT,
    LIMIT_DEFAULT,
    ListParams,
    check_query_names,
    list_page,
    page_size,
)

JSON_HEADERS = [(b"content-type", b"application/json")]


def _params(name: str, status: Any) -> type[msgspec.Struct]:
    """ListParams with the types routes.py declares for Litestar: the statuses, and `limit` as the text
    sent (read by routes.page_size, as the handlers do)."""
    checked = {"status": (status | None, None), "limit": (str, str(LIMIT_DEFAULT))}
    return msgspec.defstruct(
        name,
        [(f.name, *checked.get(f.name, (f.type, f.default))) for f in msgspec.structs.fields(ListParams)],
    )


READS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "/v1/stockouts": (_params("StockoutListParams", StockoutStatus), "stockouts"),
    "/v1/orders": (_params("OrderListParams", OrderStatus), "orders"),
}


class FastReads:
    """Litestar middleware: answers the list reads itself, passes every other request on."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        unexpected: Callable[[Request[Any, Any, Any], Exception], Response[Any]],
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.encoder = msgspec.json.Encoder()
        self.unexpected = unexpected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = READS.get(scope["path"].rstrip("/")) if scope["type"] == "http" else None
        if read is None or scope["method"] != "GET":  # type: ignore[typeddict-item]
            await self.app(scope, receive, send)
            return
        kind, resource = read
        try:
            params, sent = _checked(kind, scope["query_string"])
            # The connection: the one the policy chain resolved and checked (policies/connection.py).
            found = await list_page(resource, self.runtime, scope["state"], params, sent)
            # The canonical dicts as the mappings made them: the handlers' msgspec.convert into the models
            # (3/4 of encoding a page) checks only what the mappings guarantee, and the equivalence test
            # holds these answers to the converted ones.
            body = self.encoder.encode({"items": found.items, "next_cursor": found.next_cursor})
        except UnigateError:
            raise  # the policy chain answers it, as the handler layer's exception handlers would
        except Exception as error:
            # An error nobody expected: answered by the app's handler for it, here, inside the policy
            # chain, as the exception middleware Litestar puts around a handler answers it (so the
            # answer carries the chain's headers and metering sees its status).
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            response = self.unexpected(request, error)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
            return
        await send(HTTPResponseStartEvent(type="http.response.start", status=200, headers=JSON_HEADERS))
        await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))


@lru_cache(maxsize=1024)
def _checked(kind: type[msgspec.Struct], query_string: bytes) -> tuple[ListParams, frozenset[str]]:
    """The query parameters, converted and checked as Litestar does (the last value wins; a blank is a value),
    and the names sent (a cursor is held to them). Remembered by query string (~4 us each): callers poll
    with the same few; refusals are not kept."""
    values: dict[str, str] = {}
    names: list[str] = []
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, separator="&"):
        values[name] = value
        names.append(name)
    try:
        checked = msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        at = ERROR_AT.search(message)
        field = at.group(1) if at else "query"
        raise InvalidParameter(field, f"{field}: {ERROR_AT.sub('', message)}") from None
    checked = msgspec.structs.replace(checked, limit=page_size(checked.limit))  # type: ignore[attr-defined]
    check_query_names(names)
    return ListParams(*msgspec.structs.astuple(checked)), frozenset(names)
