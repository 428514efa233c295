"""DESIGN.md's "bare Litestar + aiohttp proxy": one route that POSTs to the upstream with aiohttp and
answers its bytes untouched; no key, no policies, no signing, no parsing, no mapping. The floor the
aim in bench/gateway_chain.py is set against. Served by granian: `granian --factory bare_proxy_app:app`.
"""

from __future__ import annotations

import os

import aiohttp
from litestar import Litestar, Response, get

UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "http://127.0.0.1:8080") + "/openapi2/x.php"


def app() -> Litestar:
    session: list[aiohttp.ClientSession] = []

    async def start() -> None:
        session.append(aiohttp.ClientSession())

    async def stop() -> None:
        await session[0].close()

    @get("/v1/stockouts")
    async def stockouts() -> Response[bytes]:
        async with session[0].post(UPSTREAM, data=b"page_no=0&page_size=5") as answer:
            return Response(await answer.read(), media_type="application/json")

    return Litestar([stockouts], on_startup=[start], on_shutdown=[stop], logging_config=None)
