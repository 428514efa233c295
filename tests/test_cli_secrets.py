"""UNIGATE_SECRET_KEY from the command line: a command run with the wrong key seals nothing, a bad key is
named without being shown, and `unigate secrets reseal` refuses to reseal what no key given opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.store.crypto import Vault
from gateway.store.tables import Connection
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate, unigate

OTHER_KEY = Fernet.generate_key().decode()
CREDS = ("--credential", "customer=C1", "--credential", "key=K1")


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    unigate(
        env, "connections", "add", "kd", "--system", "kuaidi100", "--base-url", "http://127.0.0.1:9", *CREDS
    )
    return env


def test_a_command_with_another_key_refuses_to_seal_and_writes_nothing(env: dict[str, str]) -> None:
    wrong = {**env, "UNIGATE_SECRET_KEY": OTHER_KEY}
    added = unigate(
        wrong, "connections", "add", "wrongk", "--system", "kuaidi100", "--base-url", "http://127.0.0.1:9",
        *CREDS, check=False,
    )  # fmt: skip
    assert added.returncode == 2, added
    assert "UNIGATE_SECRET_KEY is not the key this database is sealed with" in added.stderr
    assert "Traceback" not in added.stderr and "encrypted" not in added.stdout
    assert "wrongk" not in unigate(env, "connections", "list").stdout
    # The first OAuth client makes the first signing key: sealed with the wrong key, it is refused as well,
    # and the client with it (one transaction).
    unigate(env, "consumers", "create", "sk-app")
    client = unigate(wrong, "oauth-clients", "create", "sk-app", "--scope", "orders:read", check=False)
    assert client.returncode == 2, client
    assert "UNIGATE_SECRET_KEY is not the key this database is sealed with" in client.stderr
    assert "sk-app" not in unigate(env, "oauth-clients", "list").stdout
    # The right key still writes.
    assert unigate(env, "oauth-clients", "create", "sk-app", "--scope", "orders:read").returncode == 0


def test_a_key_that_is_not_a_fernet_key_is_named_by_its_place_and_not_shown(env: dict[str, str]) -> None:
    broken = OTHER_KEY[:-2]  # a real key with a typo: never printed
    answer = unigate(
        {**env, "UNIGATE_SECRET_KEY": f"{SECRET_KEY}, {broken}"}, "connections", "list", check=False
    )
    assert answer.returncode == 2
    assert "UNIGATE_SECRET_KEY: key 2 of 2 is not a Fernet key" in answer.stderr
    assert broken not in answer.stderr + answer.stdout and SECRET_KEY not in answer.stderr + answer.stdout


async def test_reseal_changes_nothing_when_one_value_opens_with_no_key_given(env: dict[str, str]) -> None:
    async with bound_store(env):
        await Connection.insert(
            Connection(
                name="stray",
                system="kuaidi100",
                base_url="http://127.0.0.1:9",
                credentials=Vault(OTHER_KEY).seal({"customer": "C2", "key": "K2"}),
            )
        )
        before = {row["name"]: row["credentials"] for row in await Connection.select()}
    new = Fernet.generate_key().decode()
    answer = unigate({**env, "UNIGATE_SECRET_KEY": f"{new},{SECRET_KEY}"}, "secrets", "reseal", check=False)
    assert answer.returncode == 2, answer
    assert "the connection 'stray' opens with none of the keys in UNIGATE_SECRET_KEY" in answer.stderr
    async with bound_store(env):
        assert {row["name"]: row["credentials"] for row in await Connection.select()} == before
        # With the key it was sealed with among them, all are resealed with the first.
        both = f"{new},{SECRET_KEY},{OTHER_KEY}"
        done = unigate({**env, "UNIGATE_SECRET_KEY": both}, "secrets", "reseal")
        assert done.stdout.startswith("2 sealed values resealed with the first of the 3 keys")
        vault = Vault(new)
        assert {row["name"]: vault.open(row["credentials"]) for row in await Connection.select()} == {
            "kd": {"customer": "C1", "key": "K1"},
            "stray": {"customer": "C2", "key": "K2"},
        }
