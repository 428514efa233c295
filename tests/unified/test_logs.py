"""Logs: one JSON object a line, carrying the request id the caller saw, and never a secret."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx

from portal.services import accounts
from portal.services.principal import CLI, Principal
from tests.conftest import Gateway


async def _log_lines(gateway: Gateway, request_id: str, logger: str | None = None) -> list[dict]:
    """The lines carrying `request_id` (of `logger` only, when given), once there is one."""
    for _ in range(40):  # records are written by a background thread
        text = gateway.log_path.read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        found = [
            line
            for line in lines
            if line.get("request_id") == request_id and logger in (None, line.get("logger"))
        ]
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line carries request id {request_id}")


async def test_an_access_log_line_carries_the_request_id(client: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await client.get("/v1/stockouts", params={"limit": 1}, headers={"X-Request-ID": "log-test-ok"})
    assert response.status_code == 200
    [line] = await _log_lines(gateway, "log-test-ok")
    assert line["logger"] == "unigate.access"
    assert line["status"] == 200 and line["path"] == "/v1/stockouts" and line["consumer"] == "test-app"
    assert line["duration_ms"] > 0 and line["code"] is None


async def test_an_access_log_line_names_the_problem_answered(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Refused by the chain, by a handler, or failed at the backend: grep the access log by code."""
    for path, params, headers, code in (
        ("/v1/stockouts", {"limit": 0}, {}, "invalid_parameter"),  # the fast read's own check
        ("/v1/stockouts/CK-NO-SUCH", {}, {}, "not_found"),  # a handler's
        ("/v1/stockouts", {"limit": 1}, {"X-Connection": "nope"}, "connection_not_granted"),  # the chain's
        ("/v1/stockouts", {"limit": 1}, {"X-Connection": "wdt-badsign"}, "vendor_error"),
    ):
        request_id = f"log-code-{code}-{len(path)}-{len(headers)}"
        response = await client.get(path, params=params, headers={**headers, "X-Request-ID": request_id})
        assert response.json()["code"] == code, response.text
        access = await _log_lines(gateway, request_id, "unigate.access")
        assert [(line["status"], line["code"]) for line in access] == [(response.status_code, code)]


async def test_failures_are_logged_without_secrets(client: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await client.get(
        "/v1/stockouts", headers={"X-Connection": "wdt-badsign", "X-Request-ID": "log-test-vendor"}
    )
    assert response.status_code == 502
    lines = await _log_lines(gateway, "log-test-vendor")
    assert any(line.get("status") == 502 for line in lines)  # the access line, beside the failure line
    text = gateway.log_path.read_text()
    assert "not-the-secret" not in text
    assert gateway.key not in text


async def test_a_failure_is_logged_with_the_request_id_the_caller_quotes(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    """Both ways a 5xx is answered (the fast list read, the handlers) say which request failed."""
    for path, request_id in (("/v1/stockouts", "log-fail-fast"), ("/v1/stockouts/CK-1", "log-fail-handler")):
        response = await client.get(path, headers={"X-Connection": "wdt-badsign", "X-Request-ID": request_id})
        assert response.status_code == 502
        lines = await _log_lines(gateway, request_id)
        assert any(
            line["message"] == "request failed" and line["code"] == "vendor_error" for line in lines
        ), lines


async def test_an_access_line_says_who_called_from_where_and_how_long_the_backend_took(
    client: httpx.AsyncClient, gateway: Gateway
) -> None:
    """The caller's address is the peer's when no trusted proxy forwarded it: an X-Forwarded-For the
    caller wrote itself is not believed. `upstream_ms` is the part of `duration_ms` spent on the backend."""
    response = await client.get(
        "/v1/stockouts",
        params={"limit": 1},
        headers={
            "X-Connection": "wdt-badsign",
            "X-Request-ID": "log-client",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert response.status_code == 502  # refused by the backend: a call made, nothing cached
    [line] = await _log_lines(gateway, "log-client", "unigate.access")
    assert line["client"] == "127.0.0.1"
    assert 0 < line["upstream_ms"] <= line["duration_ms"]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        scraped = (await http.get("/metrics")).text
    assert 'unigate_upstream_duration_seconds_count{connection="wdt-badsign"}' in scraped


async def test_admin_api_and_token_requests_get_access_lines_naming_the_account(gateway: Gateway) -> None:
    """Not only /v1: an admin API call is logged with the admin who made it, a token request with its
    problem; probes and scrapes are not logged (they would bury everything else)."""
    username = f"log-admin-{secrets.token_hex(3)}"
    row = await accounts.create_account(CLI, username, "correct horse battery", role="admin")
    _, token = await accounts.create_token(Principal(int(row["id"]), username, "admin"), "logs")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        listed = await http.get(
            "/admin/api/consumers",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "log-admin-api"},
        )
        assert listed.status_code == 200
        refused = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "nope", "client_secret": "nope"},
            headers={"X-Request-ID": "log-token"},
        )
        assert refused.status_code == 401
        for probe in ("/healthz", "/readyz", "/metrics"):
            await http.get(probe, headers={"X-Request-ID": "log-probe"})
    [line] = await _log_lines(gateway, "log-admin-api", "unigate.access")
    assert (line["path"], line["status"], line["account"], line["consumer"]) == (
        "/admin/api/consumers",
        200,
        username,
        None,
    )
    [line] = await _log_lines(gateway, "log-token", "unigate.access")
    assert (line["path"], line["status"], line["upstream_ms"]) == ("/oauth/token", 401, None)
    text = gateway.log_path.read_text()
    assert token not in text and "log-probe" not in text
