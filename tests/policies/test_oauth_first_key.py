"""The first signing key signs at once: a client made a moment ago gets its token in the same second."""

from __future__ import annotations

from pathlib import Path

from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import load_snapshot
from policies.oauth import TokenServer
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate

URL = "http://127.0.0.1:8000/oauth/token"
FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


async def test_a_token_asked_for_right_after_the_first_client_is_made_is_signed(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}")
    migrate(env)
    async with bound_store(env):
        vault = Vault(SECRET_KEY)
        consumer = await manage.create_consumer("first-app", {})
        # A fresh store has no signing key: making the first client makes one, active from this instant.
        issued = await policy_manage.create_oauth_client(vault, consumer, ["orders:read"])
        snapshot = await load_snapshot(vault)
        server = TokenServer(lambda: snapshot, issuer="http://127.0.0.1:8000", ttl_seconds=900)
        form = {
            "grant_type": "client_credentials",
            "client_id": issued.client_id,
            "client_secret": issued.client_secret,
        }
        body = server.token_response("POST", URL, FORM_TYPE, form)
    assert body["token_type"].lower() == "bearer" and body["access_token"].count(".") == 2
