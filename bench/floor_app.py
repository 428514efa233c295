"""The data floor of GET /v1/stockouts in one Python worker: the work no gateway of this API can skip, and
nothing else. A raw ASGI callable (no Litestar, no key, no policies, no Redis, no signing, no metering)
POSTs to the upstream over the gateway's own pooled HTTP client, decodes the answer with the connector's
typed decoder, maps the 5 stockouts with the connector's compiled mapping and encodes the page.
What bench/gateway_chain.py measures above this is what the gateway's own machinery costs.
Served by granian: `granian --interface asgi floor_app:app` with FLOOR_UPSTREAM set.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from gateway.connectors.wangdiantong import connector as wdt
from gateway.httpclient import Pool

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:8080") + "/openapi2/x.php"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = [(b"content-type", b"application/json")]

_mappings = wdt.load_mappings(wdt.MAPPINGS, ["stockout"], wdt._tables())
_mapping = _mappings["stockout"]
_decoder = wdt._answer_decoder(wdt.STOCKOUTS, _mapping)
_encoder = msgspec.json.Encoder()
_pool: list[Pool] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if not _pool:
        _pool.append(Pool())
    answer = await _pool[0].request("POST", UPSTREAM, headers=FORM, body=b"page_no=0&page_size=5", timeout=10)
    records = _decoder.decode(answer.body)["stockout_list"]
    body = _encoder.encode({"items": [_mapping(record) for record in records], "next_cursor": None})
    await send({"type": "http.response.start", "status": 200, "headers": JSON})
    await send({"type": "http.response.body", "body": body})
