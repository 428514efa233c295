"""The `unigate` command as an operator uses it: a fresh database, a connection, a consumer and its keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.conftest import Simulators, gateway_env, unigate
from tests.services import free_port, run_process


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("cli"))
    unigate(env, "migrate")
    return env


def test_connections_add_list_and_test_without_showing_secrets(
    env: dict[str, str], simulators: Simulators
) -> None:
    creds = wdt_sim.DEFAULT_CREDENTIALS
    added = unigate(
        env,
        "connections",
        "add",
        "erp",
        "--system",
        "wangdiantong",
        "--base-url",
        simulators.wdt.url,
        "--credential",
        f"sid={creds['sid']}",
        "--credential",
        f"appkey={creds['appkey']}",
        "--credential",
        f"appsecret={creds['appsecret']}",
    )
    assert "credentials encrypted" in added.stdout
    listed = unigate(env, "connections", "list")
    assert "erp" in listed.stdout and simulators.wdt.url in listed.stdout
    assert creds["appsecret"] not in listed.stdout + listed.stderr
    tested = unigate(env, "connections", "test", "erp")
    assert '"ok": true' in tested.stdout
    assert creds["appsecret"] not in tested.stdout + tested.stderr
    database = Path(env["UNIGATE_VAR_DIR"]) / "unigate.db"
    assert creds["appsecret"].encode() not in database.read_bytes()


def test_a_wrong_secret_fails_the_connection_test_with_the_vendors_answer(
    env: dict[str, str], simulators: Simulators
) -> None:
    unigate(
        env,
        "connections",
        "add",
        "erp-bad",
        "--system",
        "wangdiantong",
        "--base-url",
        simulators.wdt.url,
        "--credential",
        "sid=unigate-demo",
        "--credential",
        "appkey=demo-appkey",
        "--credential",
        "appsecret=wrong",
    )
    tested = unigate(env, "connections", "test", "erp-bad", check=False)
    assert tested.returncode == 1
    assert "签名错误" in tested.stdout


def test_an_unknown_system_is_refused(env: dict[str, str]) -> None:
    refused = unigate(
        env, "connections", "add", "xx", "--system", "sap", "--base-url", "http://127.0.0.1:1", check=False
    )
    assert refused.returncode == 2
    assert "unknown system 'sap'" in refused.stderr and "(field: system)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_keys_are_shown_once_listed_by_prefix_and_revoked(env: dict[str, str]) -> None:
    unigate(env, "consumers", "create", "shop-app", "--default", "*=erp")
    created = unigate(env, "keys", "create", "shop-app", "--name", "ci")
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ug_") and len(key) >= 40
    listed = unigate(env, "keys", "list").stdout
    assert key[:11] in listed and key not in listed and "active" in listed
    key_id = next(line.split()[0] for line in listed.splitlines() if key[:11] in line)
    consumers = unigate(env, "consumers", "list").stdout
    assert any(
        "shop-app" in line and "active" in line and "keys 1 " in line and "*=erp" in line
        for line in consumers.splitlines()
    ), consumers
    unigate(env, "keys", "revoke", key_id)
    assert "revoked" in unigate(env, "keys", "list").stdout
    assert any(
        "shop-app" in line and "keys 0 " in line
        for line in unigate(env, "consumers", "list").stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://db/unigate"),
        ("UNIGATE_SECRET_KEY", "not-a-key"),
        ("UNIGATE_PORT", "eighty"),
        ("UNIGATE_PORT", "70000"),
        ("UNIGATE_WORKERS", "0"),
        ("UNIGATE_ADMISSION_MAX_WAIT", "soon"),
        ("UNIGATE_QUOTA_TIMEZONE", "Mars/Olympus"),
        ("UNIGATE_CACHE_TTL", "stockouts"),
    ],
)
def test_a_setting_that_cannot_be_used_is_named_in_one_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    answer = unigate({**gateway_env(tmp_path), variable: value}, "migrate", check=False)
    assert answer.returncode == 2
    assert answer.stderr.startswith(f"unigate: {variable}: ") and "Traceback" not in answer.stderr
    assert not (tmp_path / "unigate.db").exists()  # nothing was done with the bad setting


def test_a_new_folder_gets_its_key_and_database_readable_by_their_owner_only(tmp_path: Path) -> None:
    """They hold the key that opens every credential, password hashes and request samples: a umask of
    022 (the usual one) must not make them readable by the machine's other users."""
    env = {k: v for k, v in gateway_env(tmp_path / "var").items() if k != "UNIGATE_SECRET_KEY"}
    old = os.umask(0o022)
    try:
        unigate(env, "migrate")
    finally:
        os.umask(old)
    modes = {name: (tmp_path / "var" / name).stat().st_mode & 0o777 for name in ("secret.key", "unigate.db")}
    assert modes == {"secret.key": 0o600, "unigate.db": 0o600}


def test_a_database_that_is_not_there_is_one_line_too(tmp_path: Path) -> None:
    url = "postgres://nobody:secret@127.0.0.1:1/unigate"
    answer = unigate({**gateway_env(tmp_path), "DATABASE_URL": url}, "migrate", check=False)
    assert answer.returncode == 1
    assert "unigate: cannot connect" in answer.stderr and "Traceback" not in answer.stderr
    assert "secret" not in answer.stderr + answer.stdout


def test_output_read_by_a_pager_that_quits_early_is_not_a_connection_error(env: dict[str, str]) -> None:
    """`unigate config export | head -1`: the reader leaving is not 'cannot connect', and no traceback."""
    with subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "config", "export"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as command:
        assert command.stdout is not None and command.stderr is not None
        command.stdout.close()  # the reader is gone before the first line is written
        stderr = command.stderr.read()
        assert command.wait(timeout=60) == 1
    assert stderr == ""


@pytest.mark.parametrize("redis", [False, True], ids=["without-redis", "with-redis"])
def test_several_workers_without_redis_are_warned_that_limits_multiply(
    env: dict[str, str], tmp_path: Path, redis: bool, request: pytest.FixtureRequest
) -> None:
    """Each worker would count limits alone; the operator is told at start, not by a leaking limit."""
    port = free_port()
    extra = {"REDIS_URL": request.getfixturevalue("redis_url") if redis else ""}
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with run_process(cmd, log_path=log, env={**env, **extra}, ready_url=f"http://127.0.0.1:{port}/healthz"):
        pass
    warned = "2 workers without REDIS_URL" in log.read_text()
    assert warned is not redis


ADD = ("connections", "add", "erp2", "--system", "kuaidi100", "--base-url", "http://h")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((*ADD, "--credential", "key"), "--credential"),
        ((*ADD, "--options", "{qps"), "--options"),
        ((*ADD, "--options", "[1]"), "--options"),
        (("consumers", "create", "app2", "--default", "stockouts"), "--default"),
    ],
)
def test_a_malformed_option_is_a_usage_error_naming_it(
    env: dict[str, str], args: tuple[str, ...], named: str
) -> None:
    answer = unigate(env, *args, check=False)
    assert answer.returncode == 2
    assert f"argument {named}:" in answer.stderr and "Traceback" not in answer.stderr


def test_a_configuration_with_several_problems_names_every_one_and_changes_nothing(
    env: dict[str, str],
) -> None:
    document = """
format: 1
connections:
  erp:
    system: sap
    base_url: ftp://erp.example
plans:
  gold:
    config: {rate_limits: {per_second: 5, per_minut: 100}}
  silver:
    config: {quotas: {per_day: -5}}
consumers:
  shop:
    subscriptions: {stockouts: {plan: platinum}, orders: {plan: gold}}
"""
    before = unigate(env, "config", "export").stdout
    refused = unigate(env, "config", "apply", "-", stdin=document, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.splitlines()
    assert lines[0] == "unigate: 5 problems, nothing was changed:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "connections.erp.system",
        "connections.erp.base_url",
        "plans.gold.config.rate_limits",
        "plans.silver.config.quotas.per_day",
        "consumers.shop.subscriptions.stockouts.plan",  # gold, refused above, is not reported again
    ]
    assert unigate(env, "config", "export").stdout == before


@pytest.mark.parametrize("action", ["replay", "stop", "delete"])
def test_a_scheme_command_refused_says_so_like_every_command(env: dict[str, str], action: str) -> None:
    answer = unigate(env, "scheme", action, "no-such-scheme", check=False)
    assert answer.returncode == 2
    assert answer.stderr == "unigate: there is no scheme named 'no-such-scheme'\n"


def test_a_change_made_while_redis_is_away_is_saved_and_said_in_one_line(env: dict[str, str]) -> None:
    away = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    made = unigate(away, "plans", "create", f"redis-away-{free_port()}", "--per-second", "3", check=False)
    assert made.returncode == 0 and "created" in made.stdout
    assert "Traceback" not in made.stderr and "not announced" in made.stderr
