"""The `unigate` command: run the gateway, workers and simulators, and manage what they serve."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.metadata
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import UnigateError
from gateway.policy_cli import add_commands as add_policy_commands
from gateway.policy_cli import atomically, seconds
from gateway.schemes.cli import add_commands as add_scheme_commands
from gateway.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from gateway.store.crypto import Vault

DEMO_PORTS = {"wdt-demo": 8101, "wdt-target": 8102, "kd100-demo": 8103}


def _with_store(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run `work` with the tables bound to the configured database."""
    from gateway.store import engine as store_engine

    async def run() -> Any:
        from gateway import redis_client
        from gateway.store.snapshot import publish_versions_with
        from policies.reload import Announcer

        engine = store_engine.make_engine(settings)
        store_engine.bind(engine)
        await store_engine.start(engine)
        # With Redis, a change made here reaches every gateway node at once (else at its next poll). Bounded
        # by UNIGATE_REDIS_TIMEOUT (a PUBLISH never blocks in Redis): a frozen Redis costs the command that,
        # and the change, saved already, reaches the nodes at their next poll.
        redis = redis_client.connect(settings)
        if redis is not None:
            publish_versions_with(Announcer(redis))
        try:
            return await work()
        finally:
            if redis is not None:
                publish_versions_with(None)
                await redis.aclose()
            await store_engine.stop(engine)

    return asyncio.run(run())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    workers = args.workers or settings.workers
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Set before anything imports prometheus_client (gateway.logs does, through policies), here and in
        # the workers forked from here: their metrics then live in files they share, so /metrics answers
        # for every worker (gateway/metrics.py). Emptied: counts start at zero.
        shared = Path(settings.var_dir) / "prometheus"
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)

    import logging

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from gateway import logs
    from gateway.errors import SecretKeyMismatch
    from gateway.store.crypto import Vault
    from gateway.store.migrate import MigrationError, State, wait_until_migrated
    from gateway.store.reseal import WRONG_KEY, key_opens_database
    from gateway.store.snapshot import load_snapshot

    # This process only supervises the workers it forks: its lines are written at once, as JSON like theirs.
    logs.configure(settings.log_level, background=False)
    log = logging.getLogger("unigate.serve")
    if workers > 1 and not settings.redis_url:
        # Without Redis each worker counts alone: the leak across nodes this gateway exists to avoid.
        log.warning(
            f"{workers} workers without REDIS_URL: each worker counts rate limits, quotas and backend caps "
            f"alone, so together they admit up to {workers}x each limit; set REDIS_URL for exact limits"
        )

    async def preflight() -> State:
        found = await wait_until_migrated(settings.start_timeout_seconds, log.warning)
        vault = Vault(settings.secret_key)
        # A wrong UNIGATE_SECRET_KEY opens none of the sealed values: no connection would work here, and
        # what this node sealed no other node could open. A few rows sealed with another key (written by a
        # process with a wrong key) are loaded unusable instead, named in /readyz: the node serves the rest.
        if not await key_opens_database(vault):
            raise SecretKeyMismatch(WRONG_KEY)
        if unreadable := (await load_snapshot(vault)).unreadable():
            log.warning(
                "starting, but some sealed values do not open with this UNIGATE_SECRET_KEY: those "
                "connections refuse calls and those signing keys are not used (/readyz names them)",
                extra=unreadable,
            )
        return found

    # Checked once here rather than by every worker: a database that is not up (or not migrated) yet is
    # waited for, in one line a reason, instead of each worker failing its start with a traceback.
    try:
        found = asyncio.run(preflight())
    except (MigrationError, ValueError, SecretKeyMismatch) as error:
        log.error(f"not starting: {error}", extra={"database": _safe_url(settings.database_url)})
        return 1
    if found.unknown:  # a rolling upgrade: the new code migrated first, this node is still the old one
        log.warning(
            f"the database has {len(found.unknown)} migrations this unigate does not know (a newer unigate "
            "applied them): serving on; upgrade this node",
            extra={"unknown": list(found.unknown)},
        )
    # granian's workers are forked with its main process's signal handlers and set their own only once the
    # app is loaded: a SIGTERM in between (`docker stop` just after a start or a respawn) was swallowed,
    # and the node waited for that worker forever. Until then a worker serves nothing, so it just ends.
    os.register_at_fork(after_in_child=_stop_by_default)
    Granian(
        "gateway.app:app_from_env",
        factory=True,
        address=args.host or settings.host,
        port=args.port or settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        log_access=False,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=logs.granian_config(),
        # A worker that dies (the OOM killer, a crash in native code) is replaced, not the whole node
        # stopped; granian still gives up on a worker that dies again within seconds of its respawn.
        respawn_failed_workers=True,
        # A worker that will not stop (a request that never ends, a deadlock in the server's own shutdown)
        # is killed after this long rather than holding the node, and its deploy, for ever.
        workers_kill_timeout=math.ceil(settings.stop_timeout_seconds),
    ).serve()
    return 0


def _stop_by_default() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store.migrate import migrate

    before = asyncio.run(migrate(settings))
    where = _safe_url(settings.database_url)
    if before.pending:
        print(f"database migrated: {len(before.pending)} applied ({', '.join(before.pending)}): {where}")
    else:
        print(f"database up to date, nothing to apply: {where}")
    if before.unknown:  # this code is older than the database: a rollback, or a node not yet upgraded
        print(
            f"note: the database has {len(before.unknown)} migrations this unigate does not know "
            f"({', '.join(before.unknown)}): a newer unigate applied them"
        )
    return 0


def cmd_simulators(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.connectors.simulators import serve_simulators

    asyncio.run(serve_simulators(args.host, args.wdt_port, args.wdt_target_port, args.kd100_port))
    return 0


DEMO_ADMIN = "admin"


def _seed(settings: Settings, host: str) -> dict[str, str]:
    """The demo's data plane (gateway.demo) and its portal admin, whose password var/demo.env keeps."""
    from gateway.demo import read_env, seed_demo
    from portal.services.accounts import ensure_admin

    async def seed() -> dict[str, str]:
        env = await seed_demo(settings, host=host, ports=DEMO_PORTS)
        known = read_env(settings).get("UNIGATE_ADMIN_PASSWORD")
        env["UNIGATE_ADMIN_USER"] = DEMO_ADMIN
        env["UNIGATE_ADMIN_PASSWORD"] = await ensure_admin(DEMO_ADMIN, known)
        return env

    return _with_store(settings, seed)  # type: ignore[no-any-return]


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(_seed(settings, args.simulator_host), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, seed, start the simulators and the gateway, print how to use them; Ctrl-C stops all."""
    from gateway.demo import write_env

    cmd_migrate(args, settings)
    base = f"http://{settings.host}:{settings.port}"
    env = _seed(settings, "127.0.0.1")
    env["UNIGATE_URL"] = base
    env_file = write_env(settings, env)
    unigate = [sys.executable, "-m", "gateway.cli"]
    # Stopped by a supervisor (SIGTERM) as by Ctrl-C: the children live in sessions of their own, so
    # only this process can stop them, in the `finally` below.
    signal.signal(signal.SIGTERM, _interrupt)
    # Also when started with SIGINT ignored (`unigate demo &` from a script), where Python would not
    # turn it into KeyboardInterrupt: `kill -INT` must stop it as Ctrl-C does.
    signal.signal(signal.SIGINT, _interrupt)
    children = [
        subprocess.Popen([*unigate, "simulators"], start_new_session=True),
        subprocess.Popen([*unigate, "serve"], start_new_session=True),
        subprocess.Popen([*unigate, "worker"], start_new_session=True),
    ]
    try:
        _wait_ready(f"{base}/healthz", timeout=30)
        for port in DEMO_PORTS.values():  # the simulators too, before saying they are there
            _wait_listening("127.0.0.1", port, timeout=30)
        print(
            "\n".join(
                [
                    "",
                    "unigate demo is running",
                    f"  portal:       {base}/portal  (developers sign up here)",
                    f"  admin:        {base}/admin   user {env['UNIGATE_ADMIN_USER']}"
                    f"  password {env['UNIGATE_ADMIN_PASSWORD']}",
                    f"  API docs:     {base}/docs",
                    f"  OpenAPI:      {base}/docs/openapi.json",
                    f"  demo key:     {env['UNIGATE_DEMO_KEY']}",
                    f"  environment:  {env_file}  (source it, then:)",
                    '  curl -H "Authorization: Bearer $UNIGATE_DEMO_KEY" "$UNIGATE_URL/v1/stockouts?limit=5"',
                    "  simulators:   " + ", ".join(f"{name} :{port}" for name, port in DEMO_PORTS.items()),
                    f"  scheme:       {base}/admin/schemes/{env['UNIGATE_DEMO_SCHEME']}  (press Run now),"
                    f" or: unigate scheme run {env['UNIGATE_DEMO_SCHEME']}",
                    "Press Ctrl-C to stop.",
                ]
            ),
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut this short: the children would be left serving.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_listening(host: str, port: int, timeout: float) -> None:
    def listening() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex((host, port)) == 0

    _wait_until(listening, timeout, f"nothing answers on {host}:{port}")


def _wait_ready(url: str, timeout: float) -> None:
    import httpx

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _wait_until(ready, timeout, f"the gateway did not become ready at {url}")


def _wait_until(check: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{failure} within {timeout:.0f}s")


def _pair(text: str) -> tuple[str, str]:
    """`KEY=VALUE` from the command line; argparse turns the refusal into a usage error naming the option."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('a JSON object is expected, like {"qps": 5}')
    return value


def cmd_consumers(args: argparse.Namespace, settings: Settings) -> int:
    # Changes go through the portal's services, as an admin's do: the same checks, and the audit log.
    from gateway.store import manage
    from portal.services import apps
    from portal.services.principal import CLI

    if args.action == "create":
        defaults = dict(args.default or [])
        grants = list(args.grant or [])
        app = _with_store(
            settings,
            lambda: apps.create_app(CLI, args.name, default_connections=defaults, connections=grants),
        )
        print(f"consumer {args.name} created (id {app['id']})")
    elif args.action in ("grant", "revoke"):
        change = {args.action: args.connections}

        async def regrant() -> tuple[list[str], list[str]]:
            app = await apps.change_grants(CLI, await manage.consumer_id(args.consumer), **change)
            return app["connections"], [row["name"] for row in await manage.list_connections() if row["open"]]

        granted, open_to_all = _with_store(settings, regrant)
        print(f"{args.consumer} may use: {_usable(granted, open_to_all)}")
    elif args.action in ("suspend", "resume"):
        active = args.action == "resume"

        async def switch() -> dict[str, Any]:
            return await apps.set_app_active(CLI, await manage.consumer_id(args.consumer), active)

        _with_store(settings, switch)
        print(
            f"consumer {args.consumer} is active again: its keys work"
            if active
            else f"consumer {args.consumer} suspended: calls with its keys get 401"
        )
    elif args.action == "list":
        for row in _with_store(settings, manage.list_consumers):
            state = "active" if row["active"] else "inactive"
            routes = ", ".join(f"{k}={v}" for k, v in sorted(row["default_connections"].items()))
            granted = ",".join(row["connections"] or []) or "-"
            print(
                f"{row['id']:>5}  {row['name']:<24} {state:<8} keys {row['keys']:<3} {routes or '-'}"
                f"  granted {granted}"
            )
    return 0


def _usable(granted: list[str], open_to_all: list[str]) -> str:
    """What an app may use: its grants and, besides them, every open connection."""
    if "*" in granted:
        return "every connection (granted *)"
    return f"granted: {', '.join(granted) or 'none'}; open to every app: {', '.join(open_to_all) or 'none'}"


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import manage
    from portal.services import apps
    from portal.services.principal import CLI

    if args.action == "create":

        async def create() -> str:
            consumer = await manage.consumer_id(args.consumer)
            return (await apps.create_app_key(CLI, consumer, name=args.name or ""))[1]

        print(f"API key for {args.consumer} (shown once, store it now):\n{_with_store(settings, create)}")
    elif args.action == "rotate":
        from datetime import timedelta

        overlap = timedelta(seconds=args.overlap)
        old, key = _with_store(settings, lambda: apps.rotate_any_key(CLI, args.id, overlap))
        print(
            f"new API key for {old['consumer']} (shown once, store it now); key {args.id} ({old['prefix']}…)"
            f" works until {old['expires_at']:%Y-%m-%d %H:%M:%S %Z}:\n{key}"
        )
    elif args.action == "list":
        rows = _with_store(settings, lambda: manage.list_keys())
        for row in rows:
            state = apps.key_state(row)
            if state == "expiring":  # a rotated key: how long the clients still using it have
                state = f"expiring {row['expires_at']:%Y-%m-%d %H:%M}"
            print(f"{row['id']:>5}  {row['prefix']}…  {row['consumer']:<20} {row['name']:<20} {state}")
    elif args.action == "revoke":
        _with_store(settings, lambda: apps.revoke_any_key(CLI, args.id))
        print(f"key {args.id} revoked")
    return 0


def cmd_connections(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import manage
    from gateway.store.crypto import Vault
    from portal.services import connections
    from portal.services.principal import CLI

    vault = Vault(settings.secret_key)
    if args.action == "add":
        credentials = dict(args.credential or [])
        options = args.options or {}
        _with_store(
            settings,
            lambda: connections.save_connection(
                CLI,
                vault,
                name=args.name,
                system=args.system,
                base_url=args.base_url,
                credentials=credentials,
                options=options,
                open=args.open,
            ),
        )
        print(f"connection {args.name} saved ({args.system}, {args.base_url}); credentials encrypted")
    elif args.action == "update":
        if args.open is None:
            raise SystemExit("unigate connections update: say --open or --no-open")
        _with_store(settings, lambda: atomically(lambda: _set_open(vault, args.name, args.open)))
        print(f"connection {args.name} is {'open to every application' if args.open else 'granted only'}")
    elif args.action == "delete":
        _with_store(settings, lambda: connections.delete_connection(CLI, vault, args.name))
        print(f"connection {args.name} deleted; no consumer is granted it any more")
    elif args.action == "list":
        for row in _with_store(settings, manage.list_connections):
            access = "open" if row["open"] else "granted"
            print(f"{row['name']:<20} {row['system']:<14} {access:<8} {row['base_url']}")
    elif args.action == "test":
        from gateway.demo import test_connection

        result = _with_store(settings, lambda: test_connection(settings, args.name))
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0 if result.get("ok") else 1
    return 0


def cmd_secrets(args: argparse.Namespace, settings: Settings) -> int:
    """`secrets reseal`: the second step of rotating UNIGATE_SECRET_KEY (docs/operations.md)."""
    from gateway.store.crypto import Vault, split_keys
    from gateway.store.reseal import reseal_all
    from portal.services import audit
    from portal.services.principal import CLI

    vault = Vault(settings.secret_key)

    async def reseal() -> int:
        count = await reseal_all(vault)
        await audit.record(CLI, "secrets.reseal", f"{count} sealed values")
        return count

    count = _with_store(settings, lambda: atomically(reseal))
    keys = len(split_keys(settings.secret_key))
    print(f"{count} sealed values resealed with the first of the {keys} keys in UNIGATE_SECRET_KEY")
    if keys > 1:
        print("once every node runs with that key, set UNIGATE_SECRET_KEY to it alone and restart them")
    return 0


async def _set_open(vault: Vault, name: str, open: bool) -> None:
    """Open a connection to every application or close it, recorded as the portal records a connection's
    change; its credentials are not touched (nor re-sealed). Run inside a write transaction (atomically)."""
    from gateway.store import manage
    from portal.services import audit, connections
    from portal.services.principal import CLI

    before = await connections.get_connection(vault, name)
    await manage.set_connection_open(name, open)
    after = await connections.get_connection(vault, name)
    await audit.record(CLI, "connection.update", name, before=before, after=after)


def cmd_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Admin accounts and tokens for the portal and the management API."""
    import getpass

    from portal.services import accounts
    from portal.services.principal import CLI, Principal

    if args.action == "create":
        password = args.password or getpass.getpass("password for the new admin: ")
        _with_store(
            settings,
            lambda: accounts.create_account(
                CLI, args.username, password, role="admin", email=args.email or ""
            ),
        )
        print(f"admin {args.username} created")
    elif args.action == "reset-password":

        async def reset() -> str:
            account = await accounts.find_account(args.username)
            return await accounts.reset_password(CLI, account["id"], args.password)

        password = _with_store(settings, reset)
        print(f"password of {args.username} reset; their sessions are signed out")
        if not args.password:
            print(f"new password (shown once): {password}")
    elif args.action == "token":

        async def token() -> str:
            account = await accounts.find_account(args.username)
            if account["role"] != "admin":
                raise SystemExit(f"{args.username} is not an admin")
            principal = Principal(account["id"], account["username"], "admin")
            return (await accounts.create_token(principal, args.name or ""))[1]

        print(f"admin token for {args.username} (shown once, store it now):\n{_with_store(settings, token)}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Declarative configuration: export the current state, or apply a file atomically."""
    from gateway.settings import environ
    from gateway.store.crypto import Vault
    from portal.services import config
    from portal.services.principal import CLI

    if args.action == "export":
        document = _with_store(settings, lambda: config.export_yaml(Vault(settings.secret_key)))
        if args.output and args.output != "-":
            with open(args.output, "w", encoding="utf-8") as out:
                out.write(document)
        else:
            sys.stdout.write(document)
        return 0
    document = read_text(args.file)
    vault_key = Vault(settings.secret_key)
    if args.dry_run:
        preview = _with_store(settings, lambda: config.preview(document, environ(), vault_key))
        sys.stdout.write(preview.diff or "no changes\n")
        return 0
    result = _with_store(
        settings, lambda: config.apply(CLI, document, environ(), vault_key, comment=args.comment or "")
    )
    sys.stdout.write(result.diff or "no changes\n")
    print(f"applied as configuration version {result.version}")
    return 0


def read_text(path: str) -> str:
    """A file argument's text, `-` for standard input. A file that cannot be read, or is not UTF-8, is an
    OSError naming it, which `main` says in one line."""
    if path == "-":
        data, path = sys.stdin.buffer.read(), "standard input"
    else:
        data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OSError(
            errno.EILSEQ, f"not UTF-8 text (byte {error.start + 1} is {data[error.start]:#04x})", path
        ) from None


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unigate", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"unigate {importlib.metadata.version('unigate')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (granian)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(func=cmd_serve)

    sims = sub.add_parser("simulators", help="run the built-in vendor simulators")
    sims.add_argument("--host", default="127.0.0.1")
    sims.add_argument("--wdt-port", type=int, default=DEMO_PORTS["wdt-demo"])
    sims.add_argument("--wdt-target-port", type=int, default=DEMO_PORTS["wdt-target"])
    sims.add_argument("--kd100-port", type=int, default=DEMO_PORTS["kd100-demo"])
    sims.set_defaults(func=cmd_simulators)

    sub.add_parser("migrate", help="create or upgrade the database tables").set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed-demo", help="seed the demo consumer, key and connections")
    seed.add_argument("--simulator-host", default="127.0.0.1")
    seed.set_defaults(func=cmd_seed_demo)

    sub.add_parser("demo", help="migrate, seed, run simulators and gateway").set_defaults(func=cmd_demo)

    consumers = sub.add_parser("consumers", help="manage consumers (applications)")
    consumers_sub = consumers.add_subparsers(dest="action", required=True)
    create = consumers_sub.add_parser("create")
    create.add_argument("name")
    create.add_argument(
        "--default",
        action="append",
        type=_pair,
        help="RESOURCE=CONNECTION, e.g. stockouts=wdt-demo or *=wdt; the connection is granted to it",
    )
    create.add_argument(
        "--grant", action="append", metavar="CONNECTION", help="a connection it may use; * for every one"
    )
    for action, says in (
        ("grant", "let a consumer use connections that are not open"),
        ("revoke", "take grants back (open connections stay usable)"),
    ):
        change = consumers_sub.add_parser(action, help=says)
        change.add_argument("consumer")
        change.add_argument("connections", nargs="+", metavar="CONNECTION", help="a name, or * for all")
    for action, says in (
        ("suspend", "stop a consumer: calls with its keys get 401"),
        ("resume", "let a suspended consumer's keys work again"),
    ):
        consumers_sub.add_parser(action, help=says).add_argument("consumer")
    consumers_sub.add_parser(
        "list", help="every consumer, its state, live keys, default and granted connections"
    )
    consumers.set_defaults(func=cmd_consumers)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    key_create = keys_sub.add_parser("create")
    key_create.add_argument("consumer")
    key_create.add_argument("--name")
    keys_sub.add_parser("list")
    revoke = keys_sub.add_parser("revoke")
    revoke.add_argument("id", type=int)
    key_rotate = keys_sub.add_parser(
        "rotate", help="a new key (shown once); the old one works --overlap longer"
    )
    key_rotate.add_argument("id", type=int)
    key_rotate.add_argument(
        "--overlap",
        type=seconds,
        default=86400.0,
        metavar="SECONDS",
        help="default 86400 (a day); 0: ends now",
    )
    keys.set_defaults(func=cmd_keys)

    conns = sub.add_parser("connections", help="manage connections (backends)")
    conns_sub = conns.add_subparsers(dest="action", required=True)
    add = conns_sub.add_parser("add", help="add a connection, or change one (keeps credentials not given)")
    add.add_argument("name")
    add.add_argument("--system", required=True)
    add.add_argument("--base-url", required=True)
    add.add_argument(
        "--credential", action="append", type=_pair, help="KEY=VALUE, e.g. appsecret=...; repeat"
    )
    add.add_argument("--options", type=_json_object, help="JSON object: defaults and backend limits")
    open_help = "--open: every application may use it; --no-open: only those granted it (kept when unsaid)"
    add.add_argument("--open", action=argparse.BooleanOptionalAction, default=None, help=open_help)
    update = conns_sub.add_parser("update", help="open a connection to every application, or close it")
    update.add_argument("name")
    update.add_argument("--open", action=argparse.BooleanOptionalAction, default=None, help=open_help)
    conns_sub.add_parser("delete", help="delete a connection; grants of it are taken back").add_argument(
        "name"
    )
    conns_sub.add_parser("list")
    test = conns_sub.add_parser("test", help="make a real signed call")
    test.add_argument("name")
    conns.set_defaults(func=cmd_connections)

    admin = sub.add_parser("admin", help="portal admin accounts and management API tokens")
    admin_sub = admin.add_subparsers(dest="action", required=True)
    admin_create = admin_sub.add_parser("create", help="create an admin account")
    admin_create.add_argument("username")
    admin_create.add_argument("--password", help="prompted for when not given")
    admin_create.add_argument("--email")
    admin_reset = admin_sub.add_parser("reset-password", help="set a new password (generated if none given)")
    admin_reset.add_argument("username")
    admin_reset.add_argument("--password")
    admin_token = admin_sub.add_parser("token", help="issue an admin API token (uga_…)")
    admin_token.add_argument("username")
    admin_token.add_argument("--name")
    admin.set_defaults(func=cmd_admin)

    config = sub.add_parser("config", help="export or apply the declarative configuration (YAML)")
    config_sub = config.add_subparsers(dest="action", required=True)
    export = config_sub.add_parser("export", help="print the configuration; credentials as ${ENV} references")
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    apply = config_sub.add_parser("apply", help="validate and apply a file in one transaction")
    apply.add_argument("file", help="the YAML file, or - for standard input")
    apply.add_argument("--dry-run", action="store_true", help="show the changes without applying them")
    apply.add_argument("--comment", help="a note stored with this configuration version")
    config.set_defaults(func=cmd_config)

    secrets = sub.add_parser("secrets", help="the values sealed with UNIGATE_SECRET_KEY")
    secrets_sub = secrets.add_subparsers(dest="action", required=True)
    secrets_sub.add_parser(
        "reseal",
        help="seal every stored credential and signing key again with the first key in UNIGATE_SECRET_KEY "
        "(rotation: NEW,OLD on every node, reseal, then NEW alone)",
    )
    secrets.set_defaults(func=cmd_secrets)
    add_scheme_commands(sub)
    add_policy_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:  # a variable that cannot be used: say which, without a traceback
        print(f"unigate: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader left (`unigate ... | head`): not a connection problem, so quietly
        # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again (Python docs,
        # "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConnectionError, socket.gaierror) as error:  # the database or Redis is not there
        print(f"unigate: cannot connect: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if error.filename is None:  # not about a file (a network error asyncpg gathers): as before
            raise
        # A file argument that cannot be read or written (none, a directory, not allowed, not UTF-8).
        print(f"unigate: {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    except UnigateError as error:  # a refused input: say what and which field, without a traceback
        if problems := error.extra.get("problems"):  # a document refused for several reasons: one a line
            print(f"unigate: {len(problems)} problems, nothing was changed:", file=sys.stderr)
            for found in problems:
                detail = found["detail"].removeprefix(f"{found['field']}: ")
                print(f"  {found['field']}: {detail}", file=sys.stderr)
            return 2
        field = error.extra.get("field")
        print(f"unigate: {error.detail}" + (f" (field: {field})" if field else ""), file=sys.stderr)
        return 2
    except Exception as error:  # PostgreSQL is there but will not let us in: no such database, role, password
        from gateway.store.engine import refusal

        if (reason := refusal(error)) is None:
            raise
        print(f"unigate: cannot connect: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
