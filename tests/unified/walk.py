"""Follow `next_cursor` to the end, as a consumer of a list operation does."""

from __future__ import annotations

from typing import Any

import httpx

MAX_PAGES = 500


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        params = {"cursor": page["next_cursor"]}
    raise AssertionError(f"{path} did not end within {MAX_PAGES} pages")
