"""Admin pages under /admin (the router guards every one with `admin_only`)."""

from __future__ import annotations

from typing import Any

PAGES: list[Any] = []
