"""The OpenAPI 3.1 document and the interactive docs, served offline."""

from __future__ import annotations

import httpx


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
