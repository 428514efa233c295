"""The policy commands of `unigate`, run as a user runs them: refusals name the field, secrets show once."""

from __future__ import annotations

import json
import subprocess

import pytest

from gateway.settings import Settings
from gateway.store import manage
from tests.conftest import Gateway
from tests.conftest import unigate as run_unigate
from tests.policies.p1_support import DEFAULTS, unique


@pytest.fixture(autouse=True)
def connections(gateway: Gateway) -> None:
    """The applications made here default to the session's connections (wdt-demo, ...), which the
    gateway fixture creates: run alone, this module would find none."""


def unigate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The command; these tests read refusals from its exit code, so a failure does not raise."""
    return run_unigate(env, *args, check=False)


async def test_plans_and_subscriptions_from_the_command_line(store: tuple[Settings, dict[str, str]]) -> None:
    _, env = store
    app, plan = unique("cli-app"), unique("cli-plan")
    await manage.create_consumer(app, DEFAULTS)

    bad = unigate(env, "plans", "create", plan, "--per-second", "10", "--per-minute", "5")
    assert bad.returncode == 2
    assert "field: config.rate_limits.per_minute" in bad.stderr

    made = unigate(env, "plans", "create", plan, "--per-minute", "100", "--per-day", "1000", "--approval")
    assert made.returncode == 0, made.stderr
    subscribed = unigate(env, "subscriptions", "create", app, "stockouts", "orders", "--plan", plan)
    assert subscribed.returncode == 0, subscribed.stderr
    assert subscribed.stdout.count(" pending") == 2
    pending = unigate(env, "subscriptions", "list", "--consumer", app, "--status", "pending")
    ids = [line.split()[0] for line in pending.stdout.splitlines()]
    assert len(ids) == 2
    assert unigate(env, "subscriptions", "approve", ids[0]).returncode == 0
    listed = unigate(env, "subscriptions", "list", "--consumer", app).stdout
    assert sorted(line.split()[-1] for line in listed.splitlines()) == ["active", "pending"]

    updated = unigate(env, "plans", "update", plan, "--per-day", "none", "--priority", "high")
    assert updated.returncode == 0, updated.stderr
    shown = next(line for line in unigate(env, "plans", "list").stdout.splitlines() if line.startswith(plan))
    assert '"per_day": null' in shown and '"priority": "high"' in shown and '"per_minute": 100' in shown


async def test_an_oauth_client_secret_is_shown_once(store: tuple[Settings, dict[str, str]]) -> None:
    _, env = store
    app = unique("cli-oauth")
    await manage.create_consumer(app, DEFAULTS)
    refused = unigate(
        env, "oauth-clients", "create", app, "--scope", "orders:read", "--scope", "orders:admin"
    )
    assert refused.returncode == 2 and "field: scopes[1]" in refused.stderr
    created = unigate(env, "oauth-clients", "create", app, "--scope", "orders:read")
    assert created.returncode == 0, created.stderr
    lines = dict(line.split(":", 1) for line in created.stdout.splitlines()[1:])
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    listing = unigate(env, "oauth-clients", "list", "--consumer", app).stdout
    assert client_id in listing and secret not in listing


async def test_clearing_rules_and_giving_new_ones_in_one_command_keeps_the_new_ones(
    store: tuple[Settings, dict[str, str]],
) -> None:
    """`--clear-ip-rules --allow-ip X` must leave the consumer restricted to X, not open to every address."""
    _, env = store
    app = unique("cli-rules")
    await manage.create_consumer(app, DEFAULTS)
    first = unigate(
        env, "consumer-rules", "set", app, "--deny-ip", "192.0.2.0/24", "--override", "priority=low"
    )
    assert first.returncode == 0, first.stderr

    again = unigate(
        env, "consumer-rules", "set", app, "--clear-ip-rules", "--allow-ip", "10.0.0.0/8",
        "--clear-overrides", "--override", "rate_limits.per_minute=7",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    shown = json.loads(unigate(env, "consumer-rules", "show", app).stdout)
    assert shown["ip_allow"] == ["10.0.0.0/8"] and shown["ip_deny"] == []
    assert shown["overrides"] == {"rate_limits": {"per_minute": 7}}

    # A null override lifts the plan's limit: said, as "no override" is easily meant by it.
    lifted = unigate(env, "consumer-rules", "set", app, "--override", "rate_limits.per_minute=null")
    assert lifted.stdout.splitlines()[1] == f"{app} now has no limit for: rate_limits.per_minute " + (
        "(--clear-overrides: the plan's)"
    )

    bad = unigate(env, "consumer-rules", "set", app, "--clear-ip-rules", "--deny-ip", "999.1.1.1/8")
    assert bad.returncode == 2 and "field: ip_deny[0]" in bad.stderr
    assert json.loads(unigate(env, "consumer-rules", "show", app).stdout)["ip_allow"] == ["10.0.0.0/8"]


async def test_odd_durations_are_refused_with_a_message_not_a_traceback(
    store: tuple[Settings, dict[str, str]],
) -> None:
    _, env = store
    for args, says in (
        (
            ("oauth-clients", "rotate", "ugc_any", "--overlap", "nan"),
            "argument --overlap: invalid seconds value",
        ),
        (
            ("oauth-clients", "rotate", "ugc_any", "--overlap", "-5"),
            "argument --overlap: invalid seconds value",
        ),
        (("oauth-clients", "rotate", "ugc_any", "--overlap", "1e12"), "field: overlap"),
        (("signing-keys", "rotate", "--activate-in", "inf"), "argument --activate-in: invalid seconds value"),
        (("signing-keys", "rotate", "--activate-in", "1e9"), "field: activate_in"),
    ):
        refused = unigate(env, *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert says in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr, args
