"""HEAD wherever GET (gateway/head.py): same status and headers, no body, counted as the GET; and CORS on
the answers no route gives (404, 405) and on their preflights (policies.cors.Unrouted), over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.store import policy_manage
from gateway.store.usage_tables import UsageDaily
from tests.conftest import Gateway, Simulators
from tests.policies.backends import gateway_processes
from tests.policies.p1_support import application, until
from tests.unified.test_tracking import _shipped

# Headers a HEAD must say as its GET does (RFC 9110 §9.3.2); the request id and date differ per call.
SAME = ("content-type", "content-length", "ratelimit-limit", "x-cache")
ORIGIN, FOREIGN = "https://head-cors.example", "https://elsewhere.example"


async def _get_and_head(
    http: httpx.AsyncClient,
    path: str,
    params: dict[str, str | int] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response]:
    got = await http.get(path, params=params, headers=headers)
    head = await http.head(path, params=params, headers=headers)
    assert head.status_code == got.status_code, (path, got.text)
    assert head.content == b"", path
    for name in SAME:
        assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert int(head.headers["content-length"]) == len(got.content) > 0
    assert head.headers["x-request-id"]
    return got, head


async def test_head_answers_every_unified_read_as_its_get_without_the_body(
    client: httpx.AsyncClient, simulators: Simulators
) -> None:
    stockout = _shipped(simulators)
    number = stockout["stockout_no"]
    tracking, _ = await _get_and_head(client, f"/v1/stockouts/{number}/tracking")
    assert tracking.status_code == 200
    reads: list[tuple[str, dict[str, str | int]]] = [
        ("/v1/stockouts", {"limit": 3}),  # the fast read path
        ("/v1/orders", {"limit": 2}),
        (f"/v1/stockouts/{number}", {}),  # Litestar's handlers
        (
            "/v1/logistics/tracking",
            {
                "carrier": tracking.json()["carrier"],
                "tracking_no": stockout["logistics_no"],
                "phone": stockout["receiver_mobile"],
            },
        ),
    ]
    for path, params in reads:
        got, head = await _get_and_head(client, path, params=params)
        assert got.status_code == 200 and got.headers["content-type"] == "application/json", got.text
        assert head.headers["ratelimit-remaining"]  # counted, as the GET is (the test plan has a limit)

    # Refusals too: the same problem, said in headers only.
    bad, _ = await _get_and_head(client, "/v1/stockouts", params={"limit": 0})
    assert (bad.status_code, bad.json()["field"]) == (400, "limit")
    missing, _ = await _get_and_head(client, "/v1/stockouts/NO-SUCH-STOCKOUT")
    assert missing.status_code == 404
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        refused, head = await _get_and_head(anonymous, "/v1/orders", headers={"X-Request-ID": "head-1"})
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    assert head.headers["x-request-id"] == "head-1"


async def test_head_counts_against_limits_and_usage_as_the_get_it_mirrors(gateway: Gateway) -> None:
    consumer, key, _ = await application({"rate_limits": {"per_minute": 50}}, apis=("orders",))
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:

        async def subscribed() -> bool:
            return (await http.get("/v1/orders", params={"limit": 1})).status_code == 200

        await until(subscribed, what="the new application")
        first = await http.get("/v1/orders", params={"limit": 1})
        head = await http.head("/v1/orders", params={"limit": 1})
        last = await http.get("/v1/orders", params={"limit": 1})
    remaining = [int(answer.headers["ratelimit-remaining"]) for answer in (first, head, last)]
    assert remaining[0] - 1 == remaining[1] == remaining[2] + 1
    assert head.headers["ratelimit-limit"] == "50"

    async def metered() -> bool:
        rows = await UsageDaily.select().where(UsageDaily.consumer == consumer)
        return sum(row["calls"] for row in rows) >= 50 - remaining[2]

    await until(metered, within=10, what="usage metering of the HEAD")
    rows = await UsageDaily.select().where(UsageDaily.consumer == consumer)
    assert sum(row["calls"] for row in rows) == 50 - remaining[2], "every GET and HEAD is one call"


def _backend_calls(http: httpx.Client, connection: str) -> float:
    """The node's own count of calls it made to `connection`'s backend (GET /metrics)."""
    prefix = f'unigate_upstream_calls_total{{connection="{connection}"'
    lines = http.get("/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


async def test_head_is_answered_from_the_cache_and_fills_it_with_fast_reads_off(
    gateway: Gateway, store: tuple[object, dict[str, str]], tmp_path: Path
) -> None:
    _, env = store
    extra = {"UNIGATE_CACHE_TTL": "stockouts=30", "UNIGATE_FAST_READS": "off"}
    with gateway_processes(env, 1, tmp_path, **extra) as (url,):
        auth = {"Authorization": f"Bearer {gateway.key}"}
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
            with httpx.Client(base_url=url) as metrics:
                params: dict[str, str | int] = {"limit": 5, "shop": "head-cache"}
                before = _backend_calls(metrics, "wdt-demo")
                head = await http.head("/v1/stockouts", params=params)
                assert (head.status_code, head.headers["x-cache"], head.content) == (200, "MISS", b"")
                fetched = _backend_calls(metrics, "wdt-demo")
                assert fetched > before, "a HEAD not in the cache costs the backend call the GET would"
                got = await http.get("/v1/stockouts", params=params)
                assert (got.status_code, got.headers["x-cache"]) == (200, "HIT")
                assert int(head.headers["content-length"]) == len(got.content)
                again = await http.head("/v1/stockouts", params=params)
                assert (again.headers["x-cache"], again.content) == ("HIT", b"")
                assert again.headers["content-length"] == head.headers["content-length"]
                assert _backend_calls(metrics, "wdt-demo") == fetched


def test_health_docs_and_405s_answer_head_and_say_so(anonymous: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/docs/openapi.json"):
        got, head = anonymous.get(path), anonymous.head(path)
        assert (head.status_code, head.content) == (got.status_code, b"")
        assert head.headers["content-type"] == got.headers["content-type"]
        assert int(head.headers["content-length"]) > 0
    assert anonymous.head("/healthz").headers["content-length"] == str(len(anonymous.get("/healthz").content))

    # The document lists the GETs only: HEAD is implied by every GET (RFC 9110), not another operation.
    spec = anonymous.get("/docs/openapi.json").json()
    assert not [path for path, item in spec["paths"].items() if "head" in item]
    assert "get" in spec["paths"]["/v1/stockouts"]

    # Where GET is allowed, so is HEAD, and a 405 or an OPTIONS answer says so; elsewhere it is not.
    for method, path in (("DELETE", "/v1/stockouts/SO1"), ("POST", "/healthz"), ("PUT", "/readyz")):
        refused = anonymous.request(method, path)
        assert refused.status_code == 405 and refused.json()["code"] == "method_not_allowed"
        assert refused.headers["content-type"] == "application/problem+json"
        allowed = [m.strip() for m in refused.headers["allow"].split(",")]
        assert {"GET", "HEAD"} <= set(allowed), refused.headers["allow"]
    options = anonymous.options("/healthz")
    assert options.status_code == 204 and "HEAD" in options.headers["allow"].split(", ")
    token = anonymous.head("/oauth/token")
    assert (token.status_code, token.content) == (405, b"")
    assert "HEAD" not in token.headers["allow"] and "POST" in token.headers["allow"]
    nowhere = anonymous.head("/v1/no-such-api")
    assert (nowhere.status_code, nowhere.content) == (404, b"")
    assert nowhere.headers["content-type"] == "application/problem+json"


async def test_unrouted_answers_and_their_preflights_carry_cors_for_an_allowed_origin(
    gateway: Gateway, client: httpx.AsyncClient
) -> None:
    await policy_manage.set_api_policy("stockouts", cors={"allow_origins": [ORIGIN]})
    try:

        async def allowed() -> bool:
            answer = await client.get("/v1/stockouts", params={"limit": 1}, headers={"Origin": ORIGIN})
            return answer.headers.get("access-control-allow-origin") == ORIGIN

        await until(allowed, what="the CORS rules")
        routed = await client.get("/v1/stockouts", params={"limit": 1}, headers={"Origin": ORIGIN})
        cors_headers = ("access-control-allow-origin", "access-control-expose-headers", "vary")
        for method, path, status in (
            ("GET", "/v1/no-such-api", 404),
            ("GET", "/v1/stockouts/SO1/no-such-thing", 404),
            ("GET", "/v1/orders/a/b/c", 404),  # orders allows no origin: the first API allowing it answers
            ("PUT", "/v1/stockouts", 405),
            ("HEAD", "/v1/no-such-api", 404),
        ):
            answer = await client.request(method, path, headers={"Origin": ORIGIN})
            assert answer.status_code == status, (method, path)
            assert answer.headers["content-type"] == "application/problem+json"
            for name in cors_headers:
                assert answer.headers[name] == routed.headers[name], (method, path, name)
            if method != "HEAD":
                assert answer.json()["code"] in ("not_found", "method_not_allowed")
            foreign = await client.request(method, path, headers={"Origin": FOREIGN})
            assert foreign.status_code == status
            assert "access-control-allow-origin" not in foreign.headers
        assert (
            "access-control-allow-origin"
            not in (await client.get("/nowhere", headers={"Origin": ORIGIN})).headers
        )

        # A preflight for a path no route takes succeeds as the chain's would, so the page sends its call
        # and reads the 404; a foreign origin, or a method the API does not allow, is refused as there.
        asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        asked["Access-Control-Request-Headers"] = "Authorization, X-Connection"
        preflight = await client.options("/v1/no-such-api", headers=asked)
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["x-request-id"]
        for refused_headers in (
            {**asked, "Origin": FOREIGN},
            {**asked, "Access-Control-Request-Method": "DELETE"},
            {**asked, "Access-Control-Request-Headers": "X-Secret"},
        ):
            refused = await client.options("/v1/no-such-api", headers=refused_headers)
            assert (refused.status_code, refused.json()["code"]) == (403, "cors_rejected")
            assert "access-control-allow-origin" not in refused.headers
        # Browsers preflight a HEAD that sends a key: allowed wherever GET is, and answered with CORS.
        head_preflight = await client.options(
            "/v1/stockouts", headers={**asked, "Access-Control-Request-Method": "HEAD"}
        )
        assert head_preflight.status_code == 204
        head = await client.head("/v1/stockouts", params={"limit": 1}, headers={"Origin": ORIGIN})
        assert (head.status_code, head.headers["access-control-allow-origin"], head.content) == (
            200,
            ORIGIN,
            b"",
        )
    finally:
        await policy_manage.set_api_policy("stockouts", cors={})
