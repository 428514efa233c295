"""docker-compose.yml, the Dockerfile's commands and deploy/nginx.conf describe a topology that can run:
every reference resolves, every command is one the CLI offers, and nginx accepts its config."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib
import io
import ipaddress
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import load_settings
from tests.conftest import SECRET_KEY, Gateway, gateway_env, unigate
from tests.services import free_port, run_process

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


@pytest.mark.skipif(not NGINX.exists(), reason="nginx is not installed (Debian package nginx-light)")
def test_the_load_balancer_serves_the_api_but_not_metrics_or_readiness(
    tmp_path: Path, gateway: Gateway
) -> None:
    """deploy/nginx.conf in front of a real gateway: /v1 and /healthz pass, while /metrics (every consumer's
    traffic by name) and /readyz (every connection's name) stay for the scraper inside the network."""
    import httpx

    port = free_port()
    upstream = gateway.url.removeprefix("http://")
    conf = re.sub(r"^(\s*server\s+)[\w.-]+:\d+", rf"\g<1>{upstream}", NGINX_CONF.read_text(), flags=re.M)
    conf = re.sub(r"^pid\s+\S+;", f"pid {tmp_path / 'nginx.pid'};", conf, flags=re.M)
    conf = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    conf = conf.replace("/dev/stdout", str(tmp_path / "access.log")).replace(
        "/dev/stderr", str(tmp_path / "e.log")
    )
    (tmp_path / "nginx.conf").write_text(conf)
    command = [
        str(NGINX),
        "-p",
        str(tmp_path),
        "-e",
        str(tmp_path / "e.log"),
        "-c",
        str(tmp_path / "nginx.conf"),
    ]
    with run_process(
        [*command, "-g", "daemon off;"], log_path=tmp_path / "nginx.out", ready_port=port, timeout=30
    ):
        lb = f"http://127.0.0.1:{port}"
        key = {"Authorization": f"Bearer {gateway.key}"}
        assert (
            httpx.get(f"{lb}/v1/stockouts", params={"limit": 1}, headers=key, timeout=30).status_code == 200
        )
        assert httpx.get(f"{lb}/healthz", timeout=30).status_code == 200
        for inside in ("/metrics", "/readyz"):
            assert httpx.get(f"{lb}{inside}", timeout=30).status_code == 404, inside
            assert httpx.get(f"{gateway.url}{inside}", timeout=30).status_code == 200, inside


def test_dockerfile_runs_as_a_non_root_user_and_exposes_the_gateway_port() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    # The image installs the versions CI tested, and the constraints file is in the build context.
    assert re.search(r"^RUN pip install -c constraints\.txt \.$", dockerfile, re.M)
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user and user[-1] not in {"root", "0"}
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)


def _health_command(service: dict[str, Any], port: int) -> list[str]:
    """A service's healthcheck as this machine can run it: our Python, the URL's port moved to `port`."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return [sys.executable, "-c", re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", test[3])]


def _health_url(service: dict[str, Any]) -> tuple[int, str]:
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", service["healthcheck"]["test"][3])
    assert found, service["healthcheck"]
    return int(found.group(1)), found.group(2)


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_a_gateway_is_healthy_once_it_is_ready_and_not_before(
    services: dict[str, dict[str, Any]], gateway: Gateway
) -> None:
    """compose starts the load balancer once both gateways are healthy: listening is not enough (granian
    accepts connections before its workers have loaded the app), so the check asks /readyz."""
    for name in GATEWAYS:
        port, path = _health_url(services[name])
        assert port == int(_option(_command(services[name]), "--port"))
        assert path == "/readyz"
    ready = subprocess.run(
        _health_command(services["gateway-1"], int(gateway.url.rsplit(":", 1)[1])), timeout=30
    )
    assert ready.returncode == 0
    nothing = subprocess.run(
        _health_command(services["gateway-1"], free_port()), capture_output=True, timeout=30
    )
    assert nothing.returncode != 0


def test_the_scheme_worker_is_healthy_when_its_health_port_answers(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    worker = services["worker"]
    port, path = _health_url(worker)
    assert (port, path) == (int(_option(_command(worker), "--health-port")), "/healthz")
    env = gateway_env(tmp_path)
    unigate(env, "migrate")
    real_port = free_port()
    with run_process(
        [sys.executable, "-m", "gateway.cli", "worker", "--health-port", str(real_port)],
        env=env,
        log_path=tmp_path / "worker.log",
        ready_port=real_port,
    ):
        assert subprocess.run(_health_command(worker, real_port), timeout=30).returncode == 0


def test_gateways_believe_the_load_balancer_and_only_it(services: dict[str, dict[str, Any]]) -> None:
    """nginx passes X-Forwarded-For; unless its network is trusted, IP rules and per-IP limits would see
    nginx's address for every caller."""
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in NGINX_CONF.read_text()
    compose = yaml.safe_load(COMPOSE.read_text())
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    for name in GATEWAYS:
        trusted = services[name]["environment"]["UNIGATE_TRUSTED_PROXIES"].split(",")
        assert [ipaddress.ip_network(cidr.strip()) for cidr in trusted] == [subnet]


def test_a_stopped_gateway_has_time_to_finish_its_backend_calls(services: dict[str, dict[str, Any]]) -> None:
    """Docker's SIGKILL comes 10 s after SIGTERM unless told otherwise; a backend call may take longer."""
    upstream_timeout = load_settings({"UNIGATE_SECRET_KEY": SECRET_KEY}).upstream_timeout_seconds
    for name in GATEWAYS:
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s") and float(grace[:-1]) > upstream_timeout


def test_the_image_ships_every_file_the_app_reads() -> None:
    """The Dockerfile installs the project as a package (`pip install .`): a template, mapping or icon
    that package-data does not name is missing from the image though present in the repository."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    left_out = [
        str(path.relative_to(ROOT))
        for top in ("gateway", "policies", "portal")
        for path in (ROOT / top).rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
    ]
    assert not left_out, f"not in [tool.setuptools.package-data], so not in the image: {left_out}"
