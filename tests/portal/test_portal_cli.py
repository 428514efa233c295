"""The portal's commands as an operator runs them: `unigate admin …` and `unigate config export|apply`,
each a real process on its own fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import gateway_env, unigate


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("portal-cli"))
    unigate(env, "migrate")
    return env


def test_admin_create_reset_and_token(env: dict[str, str]) -> None:
    assert (
        "admin ops created" in unigate(env, "admin", "create", "ops", "--password", "a long password").stdout
    )
    taken = unigate(env, "admin", "create", "ops", "--password", "a long password", check=False)
    assert taken.returncode == 2 and "(field: username)" in taken.stderr
    short = unigate(env, "admin", "create", "ops2", "--password", "short", check=False)
    assert short.returncode == 2 and "(field: password)" in short.stderr
    reset = unigate(env, "admin", "reset-password", "ops")
    assert "new password (shown once):" in reset.stdout
    token = unigate(env, "admin", "token", "ops", "--name", "ci").stdout.strip().splitlines()[-1]
    assert token.startswith("uga_")


def test_config_export_and_apply(env: dict[str, str], tmp_path: Path) -> None:
    unigate(
        env,
        "connections",
        "add",
        "erp",
        "--system",
        "wangdiantong",
        "--base-url",
        "http://127.0.0.1:9",
        "--credential",
        "sid=the-sid",
        "--credential",
        "appkey=the-appkey",
        "--credential",
        "appsecret=the-appsecret",
    )
    exported = unigate(env, "config", "export").stdout
    assert "the-appsecret" not in exported and "${UNIGATE_CONN_ERP_APPSECRET}" in exported
    document = yaml.safe_load(exported)
    document["consumers"]["shop"] = {"default_connections": {"stockouts": "erp"}}
    path = tmp_path / "unigate.yaml"
    path.write_text(yaml.safe_dump(document))

    dry = unigate(env, "config", "apply", "--dry-run", str(path))
    assert "+  shop:" in dry.stdout
    assert "shop" not in unigate(env, "config", "export").stdout  # a dry run writes nothing
    applied = unigate(env, "config", "apply", str(path), "--comment", "add shop", stdin=None)
    assert "applied as configuration version" in applied.stdout
    assert "shop:" in unigate(env, "config", "export").stdout

    # A literal secret is refused, naming the field, and nothing changes.
    document["connections"]["erp"]["credentials"]["appsecret"] = "plain-text"
    refused = unigate(env, "config", "apply", "-", stdin=yaml.safe_dump(document), check=False)
    assert refused.returncode == 2
    assert "(field: connections.erp.credentials.appsecret)" in refused.stderr
    # A reference set in the environment replaces the stored secret; its value is never printed.
    document["connections"]["erp"]["credentials"]["appsecret"] = "${UNIGATE_CONN_ERP_SECRET}"
    replaced = unigate(
        {**env, "UNIGATE_CONN_ERP_SECRET": "rotated-secret"},
        "config",
        "apply",
        "-",
        stdin=yaml.safe_dump(document),
    )
    assert "rotated-secret" not in replaced.stdout + replaced.stderr
