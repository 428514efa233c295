"""The developer JSON API under /portal/api: the same services as the /portal pages, for scripts."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
