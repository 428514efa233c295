"""docker-compose.yml, the Dockerfile's commands and deploy/nginx.conf describe a topology that can run:
every reference resolves, every command is one the CLI offers, and nginx accepts its config."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX = Path("/usr/sbin/nginx")

EXPECTED_SERVICES = {"postgres", "redis", "simulators", "migrate", "gateway-1", "gateway-2", "worker", "lb"}
GATEWAYS = {"gateway-1", "gateway-2"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


@pytest.fixture(scope="module")
def cli_parser() -> argparse.ArgumentParser:
    """The `unigate` CLI's own argparse parser, which knows its subcommands and their options."""
    try:
        cli = importlib.import_module("gateway.cli")
    except ModuleNotFoundError as exc:
        if exc.name != "gateway.cli":
            raise
        cli = None
    if cli is None:
        pytest.fail("gateway/cli.py does not exist yet: compose commands cannot be checked", pytrace=False)
    parser: argparse.ArgumentParser = cli.build_parser()
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:  # argparse has no public accessor for its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _parse_error(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """argparse's complaint about `args` (it exits rather than raising), or None if they parse."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parser.parse_args(args)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _depends_on(service: dict[str, Any]) -> list[str]:
    # Compose accepts both a list of names and a mapping of name -> condition.
    return list(service.get("depends_on") or [])


def _upstream_servers(conf: str) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M)]


def test_compose_defines_the_whole_topology(services: dict[str, dict[str, Any]]) -> None:
    assert services.keys() >= EXPECTED_SERVICES, f"missing: {sorted(EXPECTED_SERVICES - services.keys())}"


def test_every_dependency_names_a_defined_service(services: dict[str, dict[str, Any]]) -> None:
    dangling = {
        (name, dep)
        for name, service in services.items()
        for dep in _depends_on(service)
        if dep not in services
    }
    assert not dangling, f"depends_on names undefined services: {sorted(dangling)}"


def test_migrations_run_against_a_healthy_postgres_before_gateways_start(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    for gateway in GATEWAYS:
        assert services[gateway]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gateways_share_postgres_redis_and_one_secret_key(services: dict[str, dict[str, Any]]) -> None:
    for gateway in GATEWAYS:
        env = services[gateway]["environment"]
        assert env["DATABASE_URL"] == "postgres://unigate:unigate@postgres:5432/unigate"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        # `:?` makes compose refuse to start without a key instead of each replica inventing its own.
        assert env["UNIGATE_SECRET_KEY"] == "${UNIGATE_SECRET_KEY:?set it}"


def test_the_scheme_worker_shares_the_database_and_redis_after_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    assert _command(worker)[:2] == ["unigate", "worker"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"] == services["gateway-1"]["environment"]


def test_project_services_run_a_unigate_subcommand(
    services: dict[str, dict[str, Any]], cli_parser: argparse.ArgumentParser
) -> None:
    built = {name: service for name, service in services.items() if "build" in service}
    assert {"simulators", "migrate"} | GATEWAYS <= built.keys()
    offered = _subcommands(cli_parser)
    for name, service in built.items():
        command = _command(service)
        assert command[:1] == ["unigate"], f"{name}: command {command} does not start with unigate"
        subcommand = command[1] if len(command) > 1 else ""
        assert subcommand in offered, (
            f"{name}: `unigate {subcommand}` is not a CLI subcommand (the CLI offers {sorted(offered)})"
        )
        # The options too: a renamed flag would otherwise only show up when the container starts.
        assert _parse_error(cli_parser, command[1:]) is None, (
            f"{name}: `{' '.join(command)}`: {_parse_error(cli_parser, command[1:])}"
        )


def test_load_balancer_round_robins_over_the_gateway_services(services: dict[str, dict[str, Any]]) -> None:
    conf = NGINX_CONF.read_text()
    assert {host for host, _ in _upstream_servers(conf)} == GATEWAYS
    # nginx's default is round-robin; any balancing directive would replace it.
    assert not re.search(r"^\s*(least_conn|ip_hash|hash|random)\b", conf, re.M)
    assert any(volume.startswith("./deploy/nginx.conf:") for volume in services["lb"]["volumes"])
    assert "8000:80" in services["lb"]["ports"]


@pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (Debian package nginx-light)")
def test_nginx_accepts_the_load_balancer_config(tmp_path: Path) -> None:
    # nginx resolves upstream hosts while parsing, and compose's service names exist only inside
    # compose's network; the pid file is moved so the check writes nothing outside tmp_path.
    conf = re.sub(r"^(\s*server\s+)[\w.-]+(:\d+)", r"\g<1>127.0.0.1\2", NGINX_CONF.read_text(), flags=re.M)
    conf = re.sub(r"^pid\s+\S+;", f"pid {tmp_path / 'nginx.pid'};", conf, flags=re.M)
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        [
            str(NGINX),
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_as_a_non_root_user_and_exposes_the_gateway_port() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    # The image installs the versions CI tested, and the constraints file is in the build context.
    assert re.search(r"^RUN pip install -c constraints\.txt \.$", dockerfile, re.M)
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user and user[-1] not in {"root", "0"}
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)
