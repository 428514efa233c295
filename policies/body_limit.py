"""Policy: a cap on request body size, per unified API (UNIGATE_MAX_BODY_BYTES by default).

Schema: `check_max_body_bytes`. Handler: `BodyLimit` refuses a declared `Content-Length` over the
cap with 413 `payload_too_large` before anything is read; a body without a length (chunked) is
counted as it is read and refused as soon as it passes the cap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import PayloadTooLarge
from policies.chain import Context, Gate
from policies.config import invalid

MAX_CAP = 100 * 1024 * 1024


def check_max_body_bytes(value: int | None, field: str = "max_body_bytes") -> int | None:
    if value is not None and not 1 <= value <= MAX_CAP:
        raise invalid(field, f"must be between 1 and {MAX_CAP} bytes, or unset for the node's default")
    return value


class BodyLimit(Gate):
    """Policy: 413 for a body over the API's cap."""

    def __init__(self, default_bytes: int) -> None:
        self.default_bytes = default_bytes

    def before(self, ctx: Context) -> None:
        assert ctx.api is not None
        rules = ctx.snapshot.api_policies.get(ctx.api)
        cap = rules.max_body_bytes if rules is not None and rules.max_body_bytes else self.default_bytes
        declared = ctx.headers.get("content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > cap:
                raise PayloadTooLarge(
                    f"the body is {declared} bytes; the {ctx.api} API accepts at most {cap}"
                )
        elif "chunked" in ctx.headers.get("transfer-encoding", ""):
            ctx.receive = _counted(ctx.receive, cap, ctx.api)


def _counted(receive: Callable[..., Awaitable[Any]], cap: int, api: str) -> Any:
    seen = 0

    async def counted() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise PayloadTooLarge(f"the body passed {cap} bytes, the most the {api} API accepts")
        return message

    return counted
