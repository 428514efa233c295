"""The management REST API under /admin/api: what the admin console does, for scripts."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
