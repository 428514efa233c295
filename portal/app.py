"""The management plane as mounted into the gateway: portal pages and the admin REST API."""

from __future__ import annotations

from typing import Any

from gateway.settings import Settings


def portal_routes(settings: Settings) -> list[Any]:
    """Route handlers (controllers, routers) of the portal and the management API."""
    return []
