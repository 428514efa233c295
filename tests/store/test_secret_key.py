"""A value sealed with another UNIGATE_SECRET_KEY does not freeze a node's config, and the key can be rotated:
real `unigate serve` processes on SQLite and PostgreSQL, a Wangdiantong simulator behind them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.errors import UnigateError
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.policy_tables import SigningKey
from gateway.store.snapshot import bump_version, load_snapshot
from gateway.store.tables import Connection
from policies.oauth import TokenServer, jwks
from tests.conftest import (
    SECRET_KEY,
    TEST_PLAN,
    TEST_PLAN_CONFIG,
    Simulators,
    bound_store,
    gateway_env,
    migrate,
    unigate,
)
from tests.services import free_port, log_entries, log_tail, run_process


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[httpx.Client]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)]
    with (
        run_process(cmd, env=env, log_path=log_path, ready_url=f"{url}/healthz"),
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http


def eventually(check: Callable[[], bool], what: str, log_path: Path, within: float = 20.0) -> None:
    """Until `check` holds (the nodes poll the config version every 0.2 s); a bound, not a measurement."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}; last lines of the gateway's log:\n{log_tail(log_path)}"
        time.sleep(0.1)


async def seed(env: dict[str, str], wdt_url: str) -> dict[str, Any]:
    """A connection to the simulator, an app subscribed to every API with a key and an OAuth client (whose
    creation makes the first signing key): all sealed with the key in `env`."""
    vault = Vault(env["UNIGATE_SECRET_KEY"])
    async with bound_store(env):
        creds = dict(wdt_sim.DEFAULT_CREDENTIALS)
        await manage.put_connection(
            vault, name="erp", system="wangdiantong", base_url=wdt_url, credentials=creds, open=True
        )
        consumer = await manage.create_consumer("app", {"stockouts": "erp"})
        await policy_manage.ensure_plan(TEST_PLAN, TEST_PLAN_CONFIG)
        await policy_manage.ensure_subscriptions(consumer, TEST_PLAN)
        key = await manage.create_key(consumer, name="first")
        client = await policy_manage.create_oauth_client(vault, consumer, ["stockouts:read"])
    return {"consumer": consumer, "key": key, "client": (client.client_id, client.client_secret)}


def stockouts(http: httpx.Client, key: str, connection: str = "erp") -> httpx.Response:
    return http.get(
        "/v1/stockouts",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {key}", "X-Connection": connection},
    )


def warnings(log_path: Path) -> list[int]:
    """The config versions the node said it could not open sealed values of."""
    return [
        entry["version"]
        for entry in log_entries(log_path)
        if "do not open with this node's" in entry["message"]
    ]


def token(http: httpx.Client, client: tuple[str, str]) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)


async def test_a_row_sealed_with_another_key_does_not_freeze_the_config(
    tmp_path: Path, database_url: str, simulators: Simulators
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    seeded = await seed(env, simulators.wdt.url)
    first = seeded["key"]
    log_path = tmp_path / "gateway.log"
    with serving(env, log_path) as http:
        assert stockouts(http, first.key).status_code == 200
        # What a process with another key wrote before writers checked their key: one stray row.
        async with bound_store(env):
            await Connection.insert(
                Connection(
                    name="stray",
                    system="wangdiantong",
                    base_url=simulators.wdt.url,
                    credentials=Vault(Fernet.generate_key().decode()).seal(dict(wdt_sim.DEFAULT_CREDENTIALS)),
                    open=True,
                )
            )
            await bump_version()
        # Changes made after it still reach the node: the revoked key is refused, a new one works.
        second = unigate(env, "keys", "create", "app").stdout.split()[-1]
        assert unigate(env, "keys", "revoke", str(first.id)).returncode == 0  # the later change of the two
        eventually(
            lambda: stockouts(http, first.key).status_code == 401, "the revoked key still works", log_path
        )
        assert stockouts(http, second).status_code == 200
        # The stray connection is named in /readyz and refuses calls by saying why; the node stays in service.
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["unreadable"] == {"connections": ["stray"], "signing_keys": []}
        warned_before = warnings(log_path)
        for _ in range(3):
            refused = stockouts(http, second, "stray")
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "credentials_unreadable"
            assert "'stray'" in refused.json()["detail"] and "UNIGATE_SECRET_KEY" in refused.json()["detail"]
        # Logged once per config version it is found in, not once per request.
        warned = warnings(log_path)
        assert warned == warned_before and len(warned) == len(set(warned)) >= 1, warned
    # A node (re)started now starts, and says what it cannot open.
    with serving(env, tmp_path / "restart.log") as http:
        assert stockouts(http, second).status_code == 200
        assert http.get("/readyz").json()["unreadable"]["connections"] == ["stray"]
        # Its credentials given again with the right key: it serves, and nothing is left unreadable.
        given = [f"--credential={field}={value}" for field, value in wdt_sim.DEFAULT_CREDENTIALS.items()]
        unigate(
            env,
            "connections",
            "add",
            "stray",
            "--system",
            "wangdiantong",
            "--base-url",
            simulators.wdt.url,
            *given,
        )
        eventually(
            lambda: stockouts(http, second, "stray").status_code == 200, "stray still refused", log_path
        )
        assert http.get("/readyz").json()["status"] == "ready"
    assert "starting, but some sealed values do not open" in (tmp_path / "restart.log").read_text()
    # A key that opens none of the sealed values is a wrong key: that node refuses to start.
    wrong = unigate(
        {**env, "UNIGATE_SECRET_KEY": Fernet.generate_key().decode(), "UNIGATE_PORT": str(free_port())},
        "serve",
        check=False,
    )
    assert wrong.returncode == 1
    assert (
        "not starting: UNIGATE_SECRET_KEY is not the key this database is sealed with"
        in wrong.stdout + wrong.stderr
    )


async def test_the_secret_key_is_rotated_without_a_node_that_cannot_read(
    tmp_path: Path, database_url: str, simulators: Simulators
) -> None:
    old, new = SECRET_KEY, Fernet.generate_key().decode()
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    seeded = await seed(env, simulators.wdt.url)
    key, client = seeded["key"].key, seeded["client"]
    # 1) NEW,OLD on every node: everything sealed with OLD still opens.
    with serving({**env, "UNIGATE_SECRET_KEY": f"{new},{old}"}, tmp_path / "both.log") as http:
        assert stockouts(http, key).status_code == 200
        assert token(http, client).status_code == 200
        assert "unreadable" not in http.get("/readyz").json()
    # 2) reseal: every sealed value (the connection's credentials, the signing key) now under NEW.
    resealed = unigate({**env, "UNIGATE_SECRET_KEY": f"{new},{old}"}, "secrets", "reseal")
    assert resealed.stdout.startswith("2 sealed values resealed with the first of the 2 keys")
    # 3) NEW alone: the node starts, calls the backend with the credentials and signs tokens.
    with serving({**env, "UNIGATE_SECRET_KEY": new}, tmp_path / "new.log") as http:
        assert stockouts(http, key).status_code == 200
        issued = token(http, client)
        assert issued.status_code == 200, issued.text
        # Signed with the resealed private key: it verifies with the key the node publishes.
        published = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
        assert jwt.decode(issued.json()["access_token"], published).claims["scope"] == "stockouts:read"
        assert stockouts(http, issued.json()["access_token"]).status_code == 200
        assert "unreadable" not in http.get("/readyz").json()
    # OLD alone no longer opens anything: nothing was left sealed with it.
    stale = unigate(
        {**env, "UNIGATE_SECRET_KEY": old, "UNIGATE_PORT": str(free_port())}, "serve", check=False
    )
    assert stale.returncode == 1 and "not starting" in stale.stdout + stale.stderr


async def test_a_signing_key_sealed_with_another_key_does_not_sign_here_but_still_verifies(
    tmp_path: Path, database_url: str, simulators: Simulators
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    seeded = await seed(env, simulators.wdt.url)
    vault = Vault(SECRET_KEY)
    async with bound_store(env):
        kid = (await SigningKey.select(SigningKey.kid).first())["kid"]
        stray = Vault(Fernet.generate_key().decode()).seal({"kty": "RSA"})
        await SigningKey.update({SigningKey.private_jwk: stray}).where(SigningKey.kid == kid)
        snapshot = await load_snapshot(vault)
    assert snapshot.unreadable_signing_keys == (kid,)
    assert snapshot.connections["erp"].credentials == dict(wdt_sim.DEFAULT_CREDENTIALS)  # the rest loads
    # Its public half is not sealed: still published, so tokens a node holding the key signs verify here.
    assert [key["kid"] for key in jwks(snapshot)["keys"]] == [kid]
    server = TokenServer(lambda: snapshot, issuer="http://127.0.0.1:8000", ttl_seconds=900)
    client_id, secret = seeded["client"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    with pytest.raises(UnigateError, match="the gateway has no signing key"):
        server.token_response(
            "POST",
            "http://127.0.0.1:8000/oauth/token",
            {"content-type": "application/x-www-form-urlencoded"},
            form,
        )
