"""README.md followed literally: its commands parse, the files it names exist, and its snippets, run as a
newcomer would against a fresh database and a real gateway process, answer as the text says."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.cli import build_parser
from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.errors import UnigateError
from tests.conftest import Gateway, Simulators, gateway_env, migrate
from tests.services import free_port, run_process

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
UNIGATE = Path(sys.executable).parent / "unigate"
# What the README's placeholders stand for when a command is parsed.
PLACEHOLDERS = {"H": "127.0.0.1", "P": "8000", "N": "2", "ID": "1", "DEAD_LETTER_ID": "1", "FILE": "x.yaml"}


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    return README[start : README.find("\n## ", start + 1)]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _lines(block: str) -> list[str]:
    """The block's lines with continuations joined and comments dropped."""
    joined = block.replace("\\\n", " ")
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines() if line.strip()]


def _documented_commands() -> Iterator[str]:
    """Every `unigate ...` command of the README's shell blocks, one per alternative (`a | b`, `a|b`)."""
    for block in _blocks(README, "sh"):
        for line in _lines(block):
            if "…" in line:  # "unigate plans … | subscriptions …": a list of topics, not a command
                continue
            line = re.sub(
                r"^.*\$\((unigate [^|)]*).*$", r"\1", line
            )  # TOKEN=$(unigate admin token ops | ...)
            if not line.startswith("unigate "):
                continue
            for part in line.split(" | "):
                part = part.strip().removeprefix("unigate ")
                part = part.split(" > ", 1)[0]  # `unigate config export > unigate.yaml`
                words = [word.strip("[]") for word in shlex.split(part)]
                words = [word for word in words if word not in ("", "...")]
                for choice in itertools.product(*(word.split("|") for word in words)):
                    yield " ".join(PLACEHOLDERS.get(word, word) for word in choice)


def test_every_command_the_readme_shows_is_one_the_cli_takes() -> None:
    commands = list(_documented_commands())
    assert len(commands) > 30  # the command line, portal and schemes blocks
    parser = build_parser()
    refused = []
    for command in commands:
        try:
            parser.parse_args(shlex.split(command))
        except SystemExit:
            refused.append(command)
    assert not refused, f"README commands `unigate` refuses: {refused}"


def test_every_file_and_make_target_the_readme_names_exists() -> None:
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    named = set(re.findall(r"\]\(([^)#\s]+)\)", prose))
    for quoted in re.findall(r"`([^`]+)`", prose):
        named |= {word for word in quoted.split() if re.search(r"\.(py|md|txt|toml|yml)$", word)}
    named = {name for name in named if not name.startswith(("/", "var/", "http"))}
    assert {"docs/policies.md", "constraints.txt", "gateway/unified/fast.py"} <= named
    # Names inside the Layout's prose (`upstream.py`) are relative to gateway/.
    bases = (ROOT, ROOT / "gateway")
    # A file outside the repository (`../notes.md`) is one a reader of a clone does not have.
    missing = [
        name
        for name in named
        if not any((base / name).exists() and (base / name).resolve().is_relative_to(ROOT) for base in bases)
    ]
    assert not missing, f"files the README names that do not exist: {missing}"
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    assert set(re.findall(r"`make (\w+)`", README)) | {"demo", "test"} <= targets


def test_the_benchmark_commands_take_the_options_shown() -> None:
    shown = re.findall(r"\.venv/bin/python (bench/\w+\.py)((?: --?[\w-]+(?: \d+)?)*)", README)
    assert len({script for script, _ in shown}) >= 3
    for script, options in shown:
        help_text = subprocess.run(
            [sys.executable, str(ROOT / script), "--help"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for option in re.findall(r"--[\w-]+", options):
            assert option in help_text, (script, option)


def test_every_error_code_in_the_table_is_one_the_gateway_answers_with() -> None:
    table = _section("The API (v1)").split("| code | status | when |", 1)[1]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    known: set[tuple[str, int]] = {("method_not_allowed", 405), ("not_found", 404)}  # Litestar's, re-said
    classes = list(UnigateError.__subclasses__())
    while classes:
        error = classes.pop()
        classes += error.__subclasses__()
        known.add((error.code, error.status))
    documented = {(code, int(status)) for codes, status in rows for code in re.findall(r"`(\w+)`", codes)}
    assert len(documented) >= 20
    assert documented <= known, documented - known


def test_the_api_table_lists_exactly_the_v1_operations(anonymous: httpx.Client) -> None:
    rows = re.findall(r"^\| (`[A-Z]+ /[^|]+)\|", _section("The API (v1)"), flags=re.MULTILINE)
    listed = {
        (method.lower(), path.split("?")[0])
        for row in rows
        for method, path in re.findall(r"`([A-Z]+) (/[^`]+)`", row)
    }
    spec = anonymous.get("/docs/openapi.json").json()
    served = {
        (method, path) for path, item in spec["paths"].items() if path.startswith("/v1/") for method in item
    }
    assert served <= listed and {op for op in listed if op[1].startswith("/v1/")} == served
    assert {("get", "/healthz"), ("get", "/readyz")} <= listed


# The snippets, run as written against a gateway of their own (the names they create are theirs).


@dataclass
class Newcomer:
    url: str
    env: dict[str, str]
    cwd: Path


@pytest.fixture(scope="module")
def newcomer(simulators: Simulators, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    """A fresh database and a real `unigate serve` over it, as after `unigate migrate` and `unigate serve`."""
    assert UNIGATE.exists(), f"the README's `unigate` command is not installed at {UNIGATE}"
    cwd = tmp_path_factory.mktemp("newcomer")
    env = gateway_env(cwd / "var")
    migrate(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**env, "UNIGATE_URL": url, "PATH": f"{UNIGATE.parent}{os.pathsep}{os.environ['PATH']}"}
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env,
        log_path=cwd / "gateway.log",
        ready_url=f"{url}/healthz",
    ):
        yield Newcomer(url, env, cwd)


def _bash(script: str, newcomer: Newcomer, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=newcomer.cwd,
        env={**os.environ, **newcomer.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _with_simulators(block: str, simulators: Simulators) -> str:
    """The README's commands with the reader's own backends: the simulators, their demo credentials."""
    wdt, kd100 = wdt_sim.DEFAULT_CREDENTIALS, kd100_sim.DEFAULT_CREDENTIALS
    block = block.replace("https://api.wangdian.cn", simulators.wdt.url)
    block = block.replace("https://poll.kuaidi100.com", simulators.kd100.url)
    for name, value in {**wdt, **kd100}.items():
        block = block.replace(f"{name}=...", f"{name}={value}")
    return block


def _shop_app_key(newcomer: Newcomer, simulators: Simulators) -> str:
    """Run the command line's steps from a backend to a key, exactly in the README's order."""
    block = _blocks(_section("The command line"), "sh")[0]
    steps = [
        line
        for line in _lines(_with_simulators(block, simulators))
        if line.startswith(("unigate connections add", "unigate consumers create", "unigate plans create"))
        or line.startswith(("unigate subscriptions create", "unigate keys create"))
    ]
    assert [step.split()[1] for step in steps] == [
        "connections",
        "connections",
        "consumers",
        "plans",
        "subscriptions",
        "keys",
    ]
    ran = _bash("\n".join(step.replace("[", "").replace("]", "") for step in steps), newcomer)
    assert ran.returncode == 0, ran.stderr
    tested = _bash("unigate connections test wdt-main", newcomer)
    assert tested.returncode == 0 and json.loads(tested.stdout)["ok"] is True, tested.stdout + tested.stderr
    return ran.stdout.strip().splitlines()[-1]


def test_the_command_line_steps_give_a_key_that_reads_stockouts(
    newcomer: Newcomer, simulators: Simulators
) -> None:
    key = _shop_app_key(newcomer, simulators)
    assert key.startswith("ug_")
    # The Two commands snippet, with the key and URL in var/demo.env as `make demo` writes them.
    (newcomer.cwd / "var" / "demo.env").write_text(f"UNIGATE_URL={newcomer.url}\nUNIGATE_DEMO_KEY={key}\n")
    snippet = _blocks(_section("Two commands"), "sh")[1]
    assert snippet.startswith("source var/demo.env")
    deadline = time.monotonic() + 15  # the gateway sees the new key at its next config poll (0.2 s here)
    while '"unauthorized"' in (answered := _bash(snippet, newcomer)).stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    page = json.loads(answered.stdout)
    assert len(page["items"]) == 5 and page["next_cursor"], answered.stdout[:300]
    assert {item["connection"] for item in page["items"]} == {"wdt-main"}


def test_the_management_api_snippet_runs_as_written(newcomer: Newcomer) -> None:
    block = _blocks(_section("Portal"), "sh")[0]
    ran = _bash(block, newcomer)
    assert ran.returncode == 0, ran.stderr
    created, pending = ran.stdout.split("\n", 1)
    assert created == "admin ops created"
    # curl prints the pending subscriptions (none) without a newline; then the dry run of the file just
    # exported: nothing to change.
    assert pending == "[]no changes\n"
    assert (newcomer.cwd / "unigate.yaml").read_text().startswith("# unigate configuration")


async def test_the_error_example_is_what_a_refused_signature_answers(
    newcomer: Newcomer, simulators: Simulators
) -> None:
    example = json.loads(_blocks(_section("The API (v1)"), "json")[0])
    wdt = {**wdt_sim.DEFAULT_CREDENTIALS, "appsecret": "not-the-secret"}
    credentials = " ".join(f"--credential {name}={value}" for name, value in wdt.items())
    url = simulators.wdt.url
    added = _bash(
        f"unigate connections add wdt-wrong --system wangdiantong --base-url {url} {credentials}"
        "\nunigate consumers create sig-app --default stockouts=wdt-wrong\nunigate plans create sig-plan"
        "\nunigate subscriptions create sig-app stockouts --plan sig-plan\nunigate keys create sig-app",
        newcomer,
    )
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    async with httpx.AsyncClient(base_url=newcomer.url, headers={"X-API-Key": key}, timeout=30) as http:
        deadline = time.monotonic() + 15  # until the gateway's config poll brings the new key
        while (answer := await http.get("/v1/stockouts", params={"limit": 1})).status_code == 401:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert answer.status_code == example["status"] == 502, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    got = answer.json()
    assert got.pop("request_id") == answer.headers["x-request-id"]
    example.pop("request_id")
    assert got == example


async def test_every_answer_carries_the_callers_request_id(gateway: Gateway) -> None:
    """README: "Every response carries X-Request-ID (yours, if you sent one)": routed or not, any method."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for method, path, headers in (
            ("GET", "/v1/stockouts/CK-NOPE", {"X-API-Key": gateway.key}),  # 404 from the handler
            ("GET", "/v1/stockouts", {}),  # 401 from the policy chain
            ("DELETE", "/v1/orders", {"X-API-Key": gateway.key}),  # 405: no route takes it
            ("GET", "/no-such-page", {}),  # 404: no route at all
            ("DELETE", "/healthz", {}),
            ("GET", "/healthz", {}),
        ):
            sent = f"caller-{method}-{len(path)}"
            answer = await http.request(method, path, headers={**headers, "X-Request-ID": sent})
            assert answer.headers["x-request-id"] == sent, (method, path, answer.status_code)
            if answer.status_code >= 400:
                assert answer.json()["request_id"] == sent, (method, path)
        refused = await http.delete("/v1/orders", headers={"X-API-Key": gateway.key})
        assert refused.status_code == 405 and refused.json()["code"] == "method_not_allowed"
        assert {"GET", "POST"} <= set(refused.headers["allow"].replace(" ", "").split(","))
