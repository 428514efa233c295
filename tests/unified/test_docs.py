"""The OpenAPI 3.1 document and the interactive docs, served offline."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from gateway.store import manage, policy_manage
from gateway.unified.examples import NEW_ORDER
from tests.conftest import Gateway


def test_openapi_document_lists_every_v1_operation(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/docs/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/v1/orders"])
    for path in (
        "/v1/stockouts",
        "/v1/stockouts/{stockout_no}",
        "/v1/stockouts/{stockout_no}/tracking",
        "/v1/orders/{order_no}",
        "/v1/logistics/tracking",
    ):
        assert "get" in paths[path], path
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_docs_page_loads_its_assets_from_the_gateway_itself(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "jsdelivr" not in page.text and "unpkg" not in page.text
    assert anonymous.get("/static/vendor/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200


def test_every_v1_operation_documents_an_example_answer_and_its_problems(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/docs/openapi.json").json()
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) >= 7
    for path, method, op in operations:
        success = next(code for code in op["responses"] if code.startswith("2"))
        assert op["responses"][success]["content"]["application/json"]["examples"], (path, method)
        problems = [code for code in op["responses"] if code.startswith(("4", "5"))]
        assert "400" in problems and "401" in problems, (path, method)
        for code in problems:
            examples = op["responses"][code]["content"]["application/problem+json"]["examples"]
            example = next(iter(examples.values()))
            assert example["value"]["status"] == int(code), (path, method, code)


# What a developer reading /docs is promised, checked against what the gateway answers.

V1_OPERATIONS = [
    ("get", "/v1/stockouts"),
    ("get", "/v1/stockouts/{stockout_no}"),
    ("get", "/v1/stockouts/{stockout_no}/tracking"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/{order_no}"),
    ("post", "/v1/orders"),
    ("get", "/v1/logistics/tracking"),
]
# The scope each operation needs (docs/policies.md, "Scopes").
SCOPES = {
    "/v1/stockouts": "stockouts:read",
    "/v1/orders": "orders:read",
    "/v1/logistics": "logistics:read",
}


def _spec(anonymous: httpx.Client) -> dict[str, Any]:
    return anonymous.get("/docs/openapi.json").json()  # type: ignore[no-any-return]


def _documented(spec: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    """The problem codes the document shows for this operation and status (empty: status not listed)."""
    answer = spec["paths"][path][method]["responses"].get(str(status))
    if answer is None:
        return set()
    examples = answer["content"]["application/problem+json"]["examples"].values()
    return {example["value"]["code"] for example in examples}


class _Probe:
    """Real requests to each /v1 operation, with its path filled in and a body where it takes one."""

    def __init__(self, stockout_no: str, order_no: str, tracking_no: str, carrier: str) -> None:
        self.paths = {
            "/v1/stockouts": "/v1/stockouts?limit=1",
            "/v1/stockouts/{stockout_no}": f"/v1/stockouts/{stockout_no}",
            "/v1/stockouts/{stockout_no}/tracking": f"/v1/stockouts/{stockout_no}/tracking",
            "/v1/orders": "/v1/orders?limit=1",
            "/v1/orders/{order_no}": f"/v1/orders/{order_no}",
            "/v1/logistics/tracking": f"/v1/logistics/tracking?carrier={carrier}&tracking_no={tracking_no}",
        }

    async def call(
        self, http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {**NEW_ORDER, "platform_order_id": f"T{uuid.uuid4().hex[:20]}"} if method == "post" else None
        return await http.request(method, self.paths[path], json=body, headers=headers)


@pytest.fixture
async def probe(client: httpx.AsyncClient) -> _Probe:
    shipped = (await client.get("/v1/stockouts", params={"status": "shipped", "limit": 1})).json()["items"][0]
    return _Probe(shipped["stockout_no"], shipped["order_no"], shipped["tracking_no"], shipped["carrier"])


async def _application(
    plan_config: dict[str, Any] | None, apis: tuple[str, ...], grants: tuple[str, ...] = ()
) -> str:
    """The key of a new application subscribed to `apis` under a plan of its own, granted `grants`."""
    name = f"docs-{uuid.uuid4().hex[:10]}"
    consumer = await manage.create_consumer(
        name, {"stockouts": "wdt-demo", "orders": "wdt-demo", "logistics": "kd100-demo"}, grants=list(grants)
    )
    await policy_manage.create_plan(name, plan_config or {})
    for api in apis:
        await policy_manage.subscribe(consumer, api, name)
    return (await manage.create_key(consumer, name="docs")).key


async def _until_known(gateway: Gateway, key: str) -> None:
    """Wait for the gateway to load the config that made `key` (its poll): a key it knows is not a 401.
    The call it takes is refused (the key's application is subscribed to nothing), so it counts no quota."""
    async with httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": key}) as http:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if (await http.get("/v1/stockouts", params={"limit": 1})).status_code != 401:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the new key was never accepted")


async def test_every_problem_a_v1_operation_answers_is_in_its_documented_responses(
    gateway: Gateway, anonymous: httpx.Client, probe: _Probe
) -> None:
    spec = _spec(anonymous)
    problem_fields = set(spec["components"]["schemas"]["Problem"]["properties"])
    wrong_system = {"stockouts": "kd100-demo", "orders": "kd100-demo", "logistics": "wdt-demo"}
    refused_sign = {"stockouts": "wdt-badsign", "orders": "wdt-badsign", "logistics": "kd100-badsign"}
    every_api = ("stockouts", "orders", "logistics")
    one_a_day = await _application({"quotas": {"per_day": 1}}, every_api, tuple(refused_sign.values()))
    # Granted every connection, so it may learn that a name does not exist (400); test-app is not (403).
    granted_all = await _application(None, every_api, ("*",))
    unsubscribed = await _application(None, ())
    await _until_known(gateway, unsubscribed)  # made last: once it is known, so are the others
    seen: list[tuple[str, str, httpx.Response]] = []
    async with (
        httpx.AsyncClient(base_url=gateway.url, headers={"X-API-Key": gateway.key}, timeout=30) as http,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as bare,
    ):
        for method, path in V1_OPERATIONS:
            api = path.split("/")[2]
            answers = [
                await probe.call(bare, method, path),
                await probe.call(bare, method, path, {"X-API-Key": unsubscribed}),
                await probe.call(http, method, path, {"X-Connection": "no-such-connection"}),
                await probe.call(bare, method, path, {"X-API-Key": granted_all, "X-Connection": "no-such"}),
                await probe.call(http, method, path, {"X-Connection": wrong_system[api]}),
                await probe.call(http, method, path, {"X-Connection": refused_sign[api]}),
            ]
            # The plan allows one call a day per API: the second is refused, whatever made the first.
            quota = {"X-API-Key": one_a_day, "X-Connection": refused_sign[api]}
            answers += [
                await probe.call(bare, method, path, quota),
                await probe.call(bare, method, path, quota),
            ]
            seen += [(method, path, answer) for answer in answers]
    statuses = {(method, path): set() for method, path in V1_OPERATIONS}
    for method, path, answer in seen:
        problem = answer.json()
        assert answer.headers["content-type"] == "application/problem+json", (method, path, answer.text)
        assert problem["code"] in _documented(spec, method, path, answer.status_code), (method, path, problem)
        assert set(problem) <= problem_fields, (method, path, problem)
        # A refusal that carries the RateLimit headers (it reached the rate limit: 429, 400 from the
        # handler, 502) has them in its documented answer, so a client generated from the spec reads them.
        documented = spec["paths"][path][method]["responses"][str(answer.status_code)].get("headers", {})
        for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"):
            if header.lower() in answer.headers:
                assert header in documented, (method, path, answer.status_code, header)
        statuses[(method, path)].add(answer.status_code)
    for operation, found in statuses.items():
        assert found == {400, 401, 403, 429, 501, 502}, operation


async def test_the_documented_filter_statuses_are_those_the_backend_takes(
    client: httpx.AsyncClient, anonymous: httpx.Client
) -> None:
    spec = _spec(anonymous)
    schemas = spec["components"]["schemas"]
    for path, model in (("/v1/stockouts", "Stockout"), ("/v1/orders", "Order")):
        parameter = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "status")
        offered = set(parameter["schema"]["enum"]) - {None}
        every_status = set(schemas[model]["properties"]["status"]["enum"])
        assert offered and offered < every_status, path
        for status in sorted(every_status):
            answer = await client.get(path, params={"status": status, "limit": 1})
            if status in offered:
                assert answer.status_code == 200, (path, status, answer.text)
            else:  # a status a record may have, but no backend can be asked for: refused, so not offered
                assert answer.status_code == 400, (path, status, answer.text)
                assert answer.json()["field"] == "status"


def test_v1_operations_say_how_they_are_called_and_health_needs_nothing(anonymous: httpx.Client) -> None:
    spec = _spec(anonymous)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["apiKeyHeader"]["description"],
    }
    for method, path in V1_OPERATIONS:
        scope = SCOPES["/".join(path.split("/")[:3])]
        if method == "post":
            scope = scope.replace(":read", ":write")
        assert spec["paths"][path][method]["security"] == [
            {"apiKey": []},
            {"apiKeyHeader": []},
            {"oauth2": [scope]},
        ], (method, path)
    assert "security" not in spec
    for path in ("/healthz", "/readyz", "/oauth/token"):
        for operation in spec["paths"][path].values():
            assert not operation.get("security"), path


async def test_the_documented_success_examples_have_the_fields_of_real_answers(
    client: httpx.AsyncClient, anonymous: httpx.Client, probe: _Probe
) -> None:
    spec = _spec(anonymous)
    for method, path in V1_OPERATIONS:
        if method == "post":
            continue  # pushing is checked in test_orders; its example is OrderPushed's four fields
        answer = await probe.call(client, method, path)
        assert answer.status_code == 200, (path, answer.text)
        documented = spec["paths"][path][method]["responses"]["200"]
        example = next(iter(documented["content"]["application/json"]["examples"].values()))["value"]
        real = answer.json()
        if "items" in real:
            real, example = real["items"][0], example["items"][0]
        assert set(real) == set(example), path
        for header in ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            assert header.lower() in answer.headers, (path, header)
            assert header in documented["headers"], (path, header)


async def test_the_documented_idempotency_key_length_is_the_one_enforced(
    client: httpx.AsyncClient, anonymous: httpx.Client
) -> None:
    spec = _spec(anonymous)
    header = next(
        p for p in spec["paths"]["/v1/orders"]["post"]["parameters"] if p["name"] == "Idempotency-Key"
    )
    longest = header["schema"]["maxLength"]
    order = {**NEW_ORDER, "platform_order_id": f"T{uuid.uuid4().hex[:20]}"}
    key = uuid.uuid4().hex * (longest // 32 + 2)
    too_long = await client.post(
        "/v1/orders",
        json=order,
        headers={"Idempotency-Key": key[: longest + 1], "X-Connection": "wdt-target"},
    )
    assert too_long.status_code == 400 and too_long.json()["field"] == "Idempotency-Key"
    taken = await client.post(
        "/v1/orders", json=order, headers={"Idempotency-Key": key[:longest], "X-Connection": "wdt-target"}
    )
    assert taken.status_code == 201, taken.text
