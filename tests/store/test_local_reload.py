"""A node serves what its own portal or admin API just changed at once, not after its next poll or the
return of its own announcement over Redis: a developer who makes a key and calls with it straight away is
not told the key is unknown."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings
from tests.conftest import unigate
from tests.services import free_port, run_process


@pytest.mark.parametrize("redis", [False, True], ids=["one-node", "with-redis"])
def test_a_key_made_through_the_admin_api_works_on_the_very_next_call(
    store: tuple[Settings, dict[str, str]], tmp_path: Path, redis: bool, request: pytest.FixtureRequest
) -> None:
    _, env = store
    # A poll so slow that only the change itself loading the snapshot can explain a key known at once.
    redis_url = request.getfixturevalue("redis_url") if redis else ""
    env = {**env, "UNIGATE_CONFIG_POLL_SECONDS": "60", "REDIS_URL": redis_url}
    admin = f"reload-{free_port()}"
    unigate(env, "admin", "create", admin, "--password", "correct horse battery")
    token = unigate(env, "admin", "token", admin).stdout.split()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
    with (
        run_process(cmd, env=env, log_path=tmp_path / "gateway.log", ready_url=f"{url}/healthz"),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        admin_api = {"Authorization": f"Bearer {token}"}
        for attempt in range(3):  # each key is tried once, straight after it is made
            made = http.post("/admin/api/consumers", json={"name": f"{admin}-{attempt}"}, headers=admin_api)
            assert made.status_code == 201, made.text
            key = http.post(f"/admin/api/consumers/{made.json()['id']}/keys", json={}, headers=admin_api)
            assert key.status_code == 201, key.text
            answer = http.get("/v1/stockouts", headers={"Authorization": f"Bearer {key.json()['key']}"})
            # Known at once: refused for want of a subscription, not as an unknown key.
            assert (answer.status_code, answer.json()["code"]) == (403, "not_subscribed")
