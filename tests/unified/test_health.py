"""Readiness tells an orchestrator whether this node can serve: it needs its database; a Redis that is away
is reported as degraded, because every node shares it and each can still serve, counting alone."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from gateway.settings import Settings
from tests.services import Service, free_port, run_process


def test_readyz_reports_redis_when_it_is_configured_without_taking_the_node_out(
    store: tuple[Settings, dict[str, str]], redis_server: Service, tmp_path: Path
) -> None:
    _, env = store
    for redis_url, expected_status, expected_check in (
        (redis_server.url, "ready", "ok"),
        (f"redis://127.0.0.1:{free_port()}/0", "degraded", "error"),
    ):
        port = free_port()
        with run_process(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
            env={**env, "REDIS_URL": redis_url},
            log_path=tmp_path / f"gateway-{port}.log",
            ready_url=f"http://127.0.0.1:{port}/healthz",
        ):
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200
            body = ready.json()
            assert body["status"] == expected_status
            assert body["checks"]["database"] == "ok"
            assert body["checks"]["redis"].startswith(expected_check)
