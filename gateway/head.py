"""HEAD answered wherever GET is (RFC 9110 §9.3.2): routed and handled as that GET, sent without its body.

Litestar routes HEAD only to handlers that declare it, so a HEAD becomes a GET before routing: the policy
chain, the cache, the fast reads and the handlers then do exactly what the GET does (same status, same
headers, same counting), and only the body is held back here, its length still said in Content-Length.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
ASGIApp = Callable[..., Awaitable[None]]
HEAD_KEY = "head"  # in scope["state"]: this GET is a HEAD (the access log says so)


def with_head(allow: str) -> str:
    """An `Allow` list with HEAD after GET wherever GET is in it: this gateway answers HEAD on every GET."""
    methods = [method.strip() for method in allow.split(",") if method.strip()]
    if "GET" in methods and "HEAD" not in methods:
        methods.insert(methods.index("GET") + 1, "HEAD")
    return ", ".join(methods)


async def answer_head(app: ASGIApp, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Run `app` on a HEAD request as the GET it mirrors and send the GET's status and headers only."""
    scope["method"] = "GET"
    scope.setdefault("state", {})[HEAD_KEY] = True
    start: Message | None = None
    finished = False

    async def headers_only(message: Message) -> None:
        nonlocal start, finished
        if finished:
            return  # the rest of a streamed body, which a HEAD answer does not carry
        if message["type"] == "http.response.start":
            if any(name.lower() == b"content-length" for name, _ in message.get("headers", [])):
                await send(message)
            else:  # said once the body is known: the fast reads and some handlers leave it to the server
                start = message
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        if start is not None:
            # RFC 9110 §8.6: no Content-Length on a 204, and a 304's would describe the unsent 200.
            if not message.get("more_body", False) and start["status"] not in (204, 304):
                length = str(len(message.get("body", b""))).encode()
                start["headers"] = [*start.get("headers", []), (b"content-length", length)]
            # A stream's length is not known until it ends, which may be never: none is claimed for it.
            await send(start)
            start = None
        finished = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    await app(scope, receive, headers_only)


async def answer_options(app: ASGIApp, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Run `app` on an OPTIONS request, its `Allow` (Litestar's, which knows only the declared methods)
    naming HEAD wherever it names GET."""

    async def allow_head(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                (name, with_head(value.decode("latin-1")).encode())
                if name.lower() == b"allow"
                else (name, value)
                for name, value in message.get("headers", [])
            ]
        await send(message)

    await app(scope, receive, allow_head)
