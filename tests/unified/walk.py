"""Follow `next_cursor` to the end, as a consumer of a list operation does."""

from __future__ import annotations

from typing import Any

import httpx

MAX_PAGES = 500


async def walk_pages(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> list[list[dict[str, Any]]]:
    """Each page's items, in the order the pages came."""
    pages: list[list[dict[str, Any]]] = []
    for _ in range(MAX_PAGES):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        if not page["next_cursor"]:
            return pages
        params = {"cursor": page["next_cursor"]}
    raise AssertionError(f"{path} did not end within {MAX_PAGES} pages")


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    return [item for page in await walk_pages(client, path, params, headers) for item in page]
