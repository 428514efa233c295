"""Every change made with `unigate` is in the audit log, as the portal records it, with "cli" as its actor."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import gateway_env, unigate

CREDENTIAL = "appsecret-never-logged-4f1c"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("cli-audit"))
    unigate(env, "migrate")
    return env


def audit_rows(env: dict[str, str]) -> list[dict[str, Any]]:
    with sqlite3.connect(Path(env["UNIGATE_VAR_DIR"]) / "unigate.db") as db:
        rows = db.execute("SELECT actor, action, target, before, after FROM unigate_audit_event ORDER BY id")
        return [
            {
                "actor": actor,
                "action": action,
                "target": target,
                "before": json.loads(before) if before else None,
                "after": json.loads(after) if after else None,
            }
            for actor, action, target, before, after in rows
        ]


def connection(name: str, *extra: str) -> tuple[str, ...]:
    return (
        *("connections", "add", name, "--system", "wangdiantong", "--base-url", "http://127.0.0.1:9"),
        *("--credential", "sid=s", "--credential", "appkey=k", "--credential", f"appsecret={CREDENTIAL}"),
        *extra,
    )


def test_every_cli_change_is_audited_as_the_portal_records_it_and_no_secret_is(env: dict[str, str]) -> None:
    said: list[str] = []

    def run(*args: str) -> str:
        out = unigate(env, *args).stdout
        said.append(out)
        return out

    run(*connection("erp"))
    run(*connection("pub", "--open"))
    run("connections", "update", "erp", "--open")
    run("consumers", "create", "shop", "--default", "stockouts=erp")
    run("consumers", "revoke", "shop", "erp")
    run("consumers", "grant", "shop", "erp")
    run("consumers", "suspend", "shop")
    run("consumers", "resume", "shop")
    key = run("keys", "create", "shop", "--name", "ci").splitlines()[-1]
    key_id = next(line.split()[0] for line in run("keys", "list").splitlines() if key[:11] in line)
    successor = run("keys", "rotate", key_id, "--overlap", "60").splitlines()[-1]
    run("keys", "revoke", key_id)
    run("plans", "create", "gold", "--per-second", "5")
    run("plans", "create", "silver", "--per-second", "1")
    run("plans", "update", "gold", "--per-minute", "100")
    run("subscriptions", "create", "shop", "stockouts", "--plan", "gold")
    run("subscriptions", "suspend", "1")
    run("subscriptions", "plan", "1", "silver")
    run("subscriptions", "cancel", "1")
    run("plans", "delete", "silver")
    run("consumer-rules", "set", "shop", "--allow-ip", "10.0.0.0/8")
    created = run("oauth-clients", "create", "shop", "--scope", "stockouts:read").splitlines()
    client_id = created[1].split()[-1]
    secrets = [created[2].split()[-1]]
    secrets.append(run("oauth-clients", "rotate", client_id, "--overlap", "30").splitlines()[-1])
    run("oauth-clients", "revoke", client_id)
    kid = run("signing-keys", "rotate").split()[2]
    run("signing-keys", "retire", kid)
    run("apis", "set", "stockouts", "--max-body-bytes", "1000")
    run("connections", "delete", "pub")

    rows = audit_rows(env)
    assert {row["actor"] for row in rows} == {"cli"}
    assert [(row["action"], row["target"]) for row in rows] == [
        ("connection.create", "erp"),
        ("connection.create", "pub"),
        ("connection.update", "erp"),
        ("app.create", "shop"),
        ("consumer.grants", "shop"),
        ("consumer.grants", "shop"),
        ("consumer.suspend", "shop"),
        ("consumer.activate", "shop"),
        ("key.create", f"shop/{key[:11]}"),
        ("key.rotate", f"shop/{key[:11]}"),
        ("key.revoke", f"shop/{key[:11]}"),
        ("plan.create", "gold"),
        ("plan.create", "silver"),
        ("plan.update", "gold"),
        ("subscription.create", "shop/stockouts"),
        ("subscription.status", "shop/stockouts"),
        ("subscription.plan", "shop/stockouts"),
        ("subscription.cancel", "shop/stockouts"),
        ("plan.delete", "silver"),
        ("consumer.overrides", "shop"),
        # The first client of a gateway makes its first signing key, as it does from the portal (unlogged).
        ("oauth_client.create", f"shop/{client_id}"),
        ("oauth_client.rotate", client_id),
        ("oauth_client.revoke", client_id),
        ("signing_key.rotate", kid),
        ("signing_key.retire", kid),
        ("api_policy.update", "stockouts"),
        ("connection.delete", "pub"),
    ]
    by_action = {row["action"]: row for row in rows}
    opened = by_action["connection.update"]
    assert (opened["before"]["open"], opened["after"]["open"]) == (False, True)
    grants = [row for row in rows if row["action"] == "consumer.grants"]
    assert (grants[0]["before"]["connections"], grants[0]["after"]["connections"]) == (["erp"], [])
    assert grants[1]["after"]["connections"] == ["erp"]
    assert by_action["consumer.suspend"]["after"]["active"] is False
    rotated = by_action["key.rotate"]
    assert rotated["before"]["expires_at"] is None and rotated["after"]["state"] == "expiring"
    plan = by_action["plan.update"]
    assert [plan[side]["config"]["rate_limits"]["per_minute"] for side in ("before", "after")] == [None, 100]
    assert plan["after"]["config"]["rate_limits"]["per_second"] == 5
    assert by_action["consumer.overrides"]["after"]["ip_allow"] == ["10.0.0.0/8"]
    assert by_action["signing_key.retire"]["after"]["retired_at"] is not None
    assert by_action["api_policy.update"]["after"]["max_body_bytes"] == 1000

    logged = json.dumps(rows)
    for secret in (CREDENTIAL, key, successor, *secrets):
        assert secret not in logged
    assert all(
        secret in "".join(said) for secret in (key, successor, *secrets)
    )  # each shown once, to the operator


@pytest.fixture
def audit_down(tmp_path: Path) -> dict[str, str]:
    """A database whose audit log refuses every record (an SQLite trigger), as a full disk or a broken
    audit table would."""
    env = gateway_env(tmp_path)
    unigate(env, "migrate")
    unigate(env, *connection("erp"))
    unigate(env, "consumers", "create", "shop", "--default", "stockouts=erp")
    unigate(env, "keys", "create", "shop")
    unigate(env, "plans", "create", "gold", "--per-second", "5")
    unigate(env, "subscriptions", "create", "shop", "stockouts", "--plan", "gold")
    unigate(env, "oauth-clients", "create", "shop", "--scope", "stockouts:read")
    unigate(env, "admin", "create", "root", "--password", "a-long-password-1")
    with sqlite3.connect(Path(env["UNIGATE_VAR_DIR"]) / "unigate.db") as db:
        db.execute(
            "CREATE TRIGGER audit_down BEFORE INSERT ON unigate_audit_event"
            " BEGIN SELECT RAISE(ABORT, 'the audit log is down'); END"
        )
    return env


def test_a_change_whose_audit_record_fails_is_not_made(audit_down: dict[str, str]) -> None:
    env = audit_down

    def state() -> list[str]:
        return [
            unigate(env, *command).stdout
            for command in (
                ("connections", "list"),
                ("consumers", "list"),
                ("keys", "list"),
                ("plans", "list"),
                ("subscriptions", "list"),
                ("oauth-clients", "list"),
                ("consumer-rules", "show", "shop"),
                ("apis", "list"),
                ("signing-keys", "list"),
            )
        ]

    def stored() -> list[Any]:
        with sqlite3.connect(Path(env["UNIGATE_VAR_DIR"]) / "unigate.db") as db:
            return [
                db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
                for table in ("unigate_account", "unigate_admin_token", "unigate_config_snapshot")
            ]

    before = (state(), stored())
    document = unigate(env, "config", "export").stdout.replace("per_second: 5", "per_second: 7")
    key_id = unigate(env, "keys", "list").stdout.split()[0]
    client_id = unigate(env, "oauth-clients", "list").stdout.split()[0]
    kid = unigate(env, "signing-keys", "list").stdout.split()[0]
    for command in (
        ("connections", "update", "erp", "--open"),
        ("consumers", "create", "other"),
        ("consumers", "suspend", "shop"),
        ("keys", "create", "shop"),
        ("keys", "rotate", key_id, "--overlap", "60"),
        ("keys", "revoke", key_id),
        ("plans", "create", "silver", "--per-second", "1"),
        ("plans", "update", "gold", "--per-minute", "100"),
        ("subscriptions", "suspend", "1"),
        ("subscriptions", "cancel", "1"),
        ("consumer-rules", "set", "shop", "--allow-ip", "10.0.0.0/8"),
        ("oauth-clients", "rotate", client_id),
        ("oauth-clients", "revoke", client_id),
        ("signing-keys", "retire", kid),
        ("apis", "set", "stockouts", "--max-body-bytes", "1000"),
        ("admin", "create", "ops", "--password", "a-long-password-2"),
        ("admin", "reset-password", "root"),
        ("admin", "token", "root"),
        ("config", "apply", "-"),
    ):
        failed = unigate(env, *command, stdin=document, check=False)
        assert failed.returncode != 0 and "the audit log is down" in failed.stderr, command
    assert (state(), stored()) == before
