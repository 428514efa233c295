"""Security headers (CSP, no framing, nosniff, Referrer-Policy, HSTS over https) on every answer of the
portal, the admin pages, their APIs, /docs and the static assets, set in one place: `SecurityHeaders`."""

from __future__ import annotations

import hashlib
import re
from base64 import b64encode
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import SwaggerRenderPlugin

from policies.ipfilter import Proxies

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

# The paths answered with these headers. /v1 and /oauth are machine APIs with their own headers; they
# pay one startswith for it (gateway/app.py, Gateway.__call__).
SECURED_PATHS = ("/portal", "/admin", "/docs", "/static")

_STRICT = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
# Portal and admin pages: scripts, styles and images from this origin only. data: images are the SVG
# icons swagger-ui.css draws with (the developer's API reference page); no inline script, handler or
# style attribute is left in the templates (tests/portal/test_security_headers.py watches for violations).
PAGE_CSP = f"{_STRICT}; img-src 'self' data:"


def _inline_script_hash(html: bytes) -> str:
    found = re.search(rb"<script>(.*?)</script>", html, re.S)
    assert found, "Litestar's OAuth2 redirect page has no inline script any more"
    return "'sha256-" + b64encode(hashlib.sha256(found.group(1)).digest()).decode() + "'"


# /docs (Swagger UI, see SwaggerPage below) as strict as the pages: React sets styles through the DOM,
# which CSP allows, and SwaggerPage drops Litestar's inline <style> and script (Chromium shows no
# violation drawing, expanding and trying an operation). Only Litestar's /docs/oauth2-redirect.html
# keeps its inline script, allowed by its hash.
DOCS_CSP = (
    f"{PAGE_CSP}; script-src 'self' {_inline_script_hash(SwaggerRenderPlugin.render_oauth2_redirect())}"
)
# Anything else (JSON, problem+json, JS, CSS): nothing in it may load or run anything, nor be framed.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
    (b"referrer-policy", b"same-origin"),
)
# A year; not includeSubDomains: the gateway does not know what else runs under its domain.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the headers to the answer's start message; a header the handler set itself is left alone."""

    def __init__(self, proxies: Proxies) -> None:
        self.proxies = proxies

    def wrap(self, scope: MutableMapping[str, Any], send: Send) -> Send:
        https = self._https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(scope["path"], list(message.get("headers") or ()), https)
            await send(message)

        return send_with_headers

    def _https(self, scope: MutableMapping[str, Any]) -> bool:
        """Over TLS to this process, or to a trusted proxy that says so in X-Forwarded-Proto (as the token
        endpoint decides, policies/oauth_routes.py): only then may the browser be told to insist on https."""
        if scope.get("scheme") == "https":
            return True
        forwarded = next((v for k, v in scope.get("headers", ()) if k == b"x-forwarded-proto"), None)
        client = scope.get("client")
        return forwarded is not None and self.proxies.forwarded_https(
            client[0] if client else None, forwarded.decode("latin-1")
        )

    @staticmethod
    def _headers(path: str, headers: list[Any], https: bool) -> list[Any]:
        have = {bytes(name).lower() for name, _ in headers}
        html = any(
            bytes(name).lower() == b"content-type" and bytes(value).startswith(b"text/html")
            for name, value in headers
        )
        csp = (DOCS_CSP if path == "/docs" or path.startswith("/docs/") else PAGE_CSP) if html else OTHER_CSP
        extra = [(b"content-security-policy", csp.encode()), *_COMMON, *([HSTS] if https else [])]
        return [*headers, *((name, value) for name, value in extra if name not in have)]


class SwaggerPage(SwaggerRenderPlugin):
    """Litestar's Swagger UI page at /docs without its inline script (the OpenAPI document inlined into
    code): the page loads /static/portal/docs.js, which reads the document from /docs/openapi.json, so
    the CSP of /docs need not allow inline scripts."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        document = f"{request.url.path.rstrip('/')}/openapi.json"
        return f"""<!DOCTYPE html><html>
          <head>
            <title>{title}</title>
            {self.favicon}
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <link href="{self.css_url}" rel="stylesheet">
            <link href="/static/portal/docs.css" rel="stylesheet">
            <script src="{self.js_url}" defer></script>
            <script src="{self.standalone_preset_js_url}" defer></script>
            <script src="/static/portal/docs.js" defer></script>
          </head>
          <body><div id="swagger-container" data-openapi="{document}"></div></body>
        </html>""".encode()
