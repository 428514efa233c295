"""What a Kong or WSO2 operator expects of `unigate`: one-line file errors, the version, and the commands
for deleting connections, rotating keys, suspending consumers and seeing which signing key signs."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gateway_env, unigate


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("cli-operator"))
    unigate(env, "migrate")
    return env


def add_connection(env: dict[str, str], name: str, *extra: str) -> None:
    unigate(
        env,
        *("connections", "add", name, "--system", "wangdiantong", "--base-url", "http://127.0.0.1:9"),
        *("--credential", "sid=s", "--credential", "appkey=k", "--credential", "appsecret=x", *extra),
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("config", "apply", "--dry-run", "{missing}"), "{missing}: No such file or directory"),
        (("config", "apply", "{directory}"), "{directory}: Is a directory"),
        (("config", "apply", "{latin1}"), "{latin1}: not UTF-8 text (byte 16 is 0xe9)"),
        (("config", "export", "-o", "{missing}/x.yaml"), "{missing}/x.yaml: No such file or directory"),
    ],
    ids=["missing", "directory", "not-utf8", "export-to-missing-directory"],
)
def test_a_file_that_cannot_be_used_is_said_in_one_line(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    paths = {
        "missing": str(tmp_path / "missing"),
        "directory": str(tmp_path),
        "latin1": str(tmp_path / "l.yaml"),
    }
    (tmp_path / "l.yaml").write_bytes("format: 1\n# caf\u00e9\n".encode("latin-1"))
    answer = unigate(env, *(arg.format(**paths) for arg in args), check=False)
    assert (answer.returncode, answer.stderr, answer.stdout) == (2, f"unigate: {says.format(**paths)}\n", "")


def test_standard_input_that_is_not_utf8_is_said_in_one_line(env: dict[str, str]) -> None:
    answer = subprocess.run(  # bytes in: unigate() sends text
        [sys.executable, "-m", "gateway.cli", "config", "apply", "-"],
        env={**os.environ, **env},
        input="format: 1\n# caf\u00e9\n".encode("latin-1"),
        capture_output=True,
        timeout=60,
    )
    assert (answer.returncode, answer.stderr) == (
        2,
        b"unigate: standard input: not UTF-8 text (byte 16 is 0xe9)\n",
    )


def test_version_is_the_installed_packages(env: dict[str, str]) -> None:
    answer = unigate(env, "--version")
    assert answer.stdout == f"unigate {importlib.metadata.version('unigate')}\n"
    assert answer.stdout.split()[1][0].isdigit()


def test_grants_and_open_connections_are_both_said(env: dict[str, str]) -> None:
    add_connection(env, "grant-erp")
    add_connection(env, "grant-pub", "--open")
    unigate(env, "consumers", "create", "grant-app", "--grant", "grant-erp")
    revoked = unigate(env, "consumers", "revoke", "grant-app", "grant-erp").stdout
    assert revoked == "grant-app may use: granted: none; open to every app: grant-pub\n"
    granted = unigate(env, "consumers", "grant", "grant-app", "grant-erp").stdout
    assert granted == "grant-app may use: granted: grant-erp; open to every app: grant-pub\n"
    everything = unigate(env, "consumers", "grant", "grant-app", "*").stdout
    assert everything == "grant-app may use: every connection (granted *)\n"


def test_a_deleted_connection_is_gone_and_no_longer_granted(env: dict[str, str]) -> None:
    add_connection(env, "gone-erp")
    unigate(env, "consumers", "create", "gone-app", "--grant", "gone-erp")
    assert unigate(env, "connections", "delete", "gone-erp").stdout.startswith("connection gone-erp deleted")
    assert "gone-erp" not in unigate(env, "connections", "list").stdout
    listed = next(
        line for line in unigate(env, "consumers", "list").stdout.splitlines() if "gone-app" in line
    )
    assert listed.endswith("granted -")
    again = unigate(env, "connections", "delete", "gone-erp", check=False)
    assert (again.returncode, again.stderr) == (2, "unigate: no connection named 'gone-erp'\n")


def key_states(env: dict[str, str]) -> dict[str, str]:
    return {
        line.split()[1].rstrip("…"): " ".join(line.split()[4:])
        for line in unigate(env, "keys", "list").stdout.splitlines()
    }


def test_a_rotated_key_works_for_the_overlap_and_the_new_one_is_shown_once(env: dict[str, str]) -> None:
    unigate(env, "consumers", "create", "rotate-app")
    old = unigate(env, "keys", "create", "rotate-app", "--name", "ci").stdout.splitlines()[-1]
    old_id = next(
        line.split()[0] for line in unigate(env, "keys", "list").stdout.splitlines() if old[:11] in line
    )
    rotated = unigate(env, "keys", "rotate", old_id, "--overlap", "3600").stdout.splitlines()
    new = rotated[-1]
    assert new.startswith("ug_") and new != old and "shown once" in rotated[0]
    assert f"key {old_id} ({old[:11]}…) works until" in rotated[0]
    states = key_states(env)
    assert states[old[:11]].startswith("expiring ") and states[new[:11]] == "active"
    assert new not in unigate(env, "keys", "list").stdout

    newest = unigate(env, "keys", "rotate", old_id, "--overlap", "0").stdout.splitlines()[-1]
    assert key_states(env)[old[:11]] == "expired" and key_states(env)[newest[:11]] == "active"
    refused = unigate(env, "keys", "rotate", old_id, check=False)
    assert (refused.returncode, refused.stderr) == (
        2,
        "unigate: only a working key can be rotated (field: key)\n",
    )


def test_a_suspended_consumer_is_listed_inactive_until_resumed(env: dict[str, str]) -> None:
    unigate(env, "consumers", "create", "pause-app")

    def state() -> str:
        line = next(
            line for line in unigate(env, "consumers", "list").stdout.splitlines() if "pause-app" in line
        )
        return line.split()[2]

    assert "get 401" in unigate(env, "consumers", "suspend", "pause-app").stdout
    assert state() == "inactive"
    unigate(env, "consumers", "resume", "pause-app")
    assert state() == "active"
    unknown = unigate(env, "consumers", "suspend", "no-such-app", check=False)
    assert (
        unknown.returncode == 2
        and unknown.stderr.startswith("unigate: ")
        and "Traceback" not in unknown.stderr
    )


def test_signing_keys_list_says_which_key_signs_and_which_waits(env: dict[str, str]) -> None:
    def states() -> dict[str, str]:
        listed = unigate(env, "signing-keys", "list").stdout.splitlines()
        return {line.split()[0]: line.split("  ")[-1].strip() for line in listed}

    first = unigate(env, "signing-keys", "rotate").stdout.split()[2]  # the first key signs at once
    assert states()[first] == "active: signs now"
    waiting = unigate(env, "signing-keys", "rotate", "--activate-in", "600").stdout.split()[2]
    assert states() == {first: "active: signs now", waiting: "waiting: published, signs from its activation"}
    now = unigate(env, "signing-keys", "rotate", "--activate-in", "0").stdout.split()[2]
    found = states()
    assert found[now] == "active: signs now" and found[waiting].startswith("waiting")
    assert found[first] == "active: published, verifies the tokens it signed"
    unigate(env, "signing-keys", "retire", now)
    found = states()
    assert found[now].startswith("retired ") and found[first] == "active: signs now"
