"""The demo: a consumer with a key and connections to the built-in simulators, kept across runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.connectors.base import ConnectionConfig
from gateway.connectors.registry import build
from gateway.settings import Settings
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import load_snapshot
from gateway.store.tables import Consumer
from gateway.upstream import Upstream

DEMO_CONSUMER = "demo-app"
DEMO_PLAN = "default"
DEMO_PLAN_CONFIG = {
    "rate_limits": {"per_second": 20, "per_minute": 600},
    "quotas": {"per_day": 50_000},
    "priority": "normal",
}
ENV_FILE = "demo.env"
# The reference scheme's three ends (its source ERP, its target ERP, its tracking lookups): their systems, and
# the demo's connections to them.
REFERENCE_ENDS = {"source": "wangdiantong", "target": "wangdiantong", "tracking": "kuaidi100"}
DEMO_CONNECTIONS = {"source": "wdt-demo", "target": "wdt-target", "tracking": "kd100-demo"}


def read_env(settings: Settings) -> dict[str, str]:
    path = Path(settings.var_dir) / ENV_FILE
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip().strip("'\"") for key, value in pairs}


def write_env(settings: Settings, env: dict[str, str]) -> Path:
    path = Path(settings.var_dir) / ENV_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(env.items())))
    path.chmod(0o600)  # it holds a live key
    return path


async def install_reference_scheme(
    vault: Vault,
    urls: Mapping[str, str],
    names: Mapping[str, str] = DEMO_CONNECTIONS,
    **connection: Any,
) -> int:
    """The reference scheme (stockouts-to-wdt-target, its mapping and its connections) on simulators:
    `urls` and `names` give each end's base URL and connection name, keyed as REFERENCE_ENDS; the
    connections carry the simulators' credentials, and `connection`'s further fields (options, open)."""
    from gateway.connectors.kuaidi100 import simulator as kd100_sim
    from gateway.connectors.wangdiantong import simulator as wdt_sim
    from gateway.schemes.service import install_template

    credentials = {"wangdiantong": wdt_sim.DEFAULT_CREDENTIALS, "kuaidi100": kd100_sim.DEFAULT_CREDENTIALS}
    for end, system in REFERENCE_ENDS.items():
        await manage.put_connection(
            vault,
            name=names[end],
            system=system,
            base_url=urls[end],
            credentials=dict(credentials[system]),
            **connection,
        )
    return await install_template(**names)


async def seed_demo(settings: Settings, *, host: str, ports: dict[str, int]) -> dict[str, str]:
    """Idempotent: connections are (re)written, the consumer kept, the key reused while it still works."""
    from gateway.schemes.service import REFERENCE_SCHEME

    vault = Vault(settings.secret_key)
    # The reference scheme (stockouts with tracking -> trade_push into wdt-target), ready to run, on
    # connections that are open: every application may use the simulators, so the portal's self-service
    # walkthrough works.
    await install_reference_scheme(
        vault,
        {end: f"http://{host}:{ports[name]}" for end, name in DEMO_CONNECTIONS.items()},
        options={"timezone": "Asia/Shanghai"},
        open=True,
    )
    # The demo app's default connection of each API: its source ERP for the ERP's, its tracking for logistics.
    erp, tracking = DEMO_CONNECTIONS["source"], DEMO_CONNECTIONS["tracking"]
    defaults = {"stockouts": erp, "orders": erp, "logistics": tracking}
    if not await Consumer.exists().where(Consumer.name == DEMO_CONSUMER):
        await manage.create_consumer(DEMO_CONSUMER, defaults, by_admin=True)
    consumer = await manage.consumer_id(DEMO_CONSUMER)
    await policy_manage.ensure_plan(DEMO_PLAN, DEMO_PLAN_CONFIG, description="what a new application gets")
    await policy_manage.ensure_subscriptions(consumer, DEMO_PLAN)

    env = read_env(settings)
    key = env.get("UNIGATE_DEMO_KEY", "")
    snapshot = await load_snapshot(vault)
    if manage.hash_key(key) not in snapshot.keys:
        key = (await manage.create_key(consumer, name="demo")).key
    env["UNIGATE_DEMO_KEY"] = key
    env["UNIGATE_DEMO_SCHEME"] = REFERENCE_SCHEME
    return env


async def test_connection(settings: Settings, name: str) -> dict[str, Any]:
    """Make a real signed call through a connection and report the vendor's answer."""
    snapshot = await load_snapshot(Vault(settings.secret_key))
    entry = snapshot.connections.get(name)
    if entry is None:
        return {"ok": False, "error": f"no connection named {name!r}"}
    upstream = Upstream(timeout_seconds=settings.upstream_timeout_seconds)
    config = ConnectionConfig(
        name=entry.name,
        system=entry.system,
        base_url=entry.base_url,
        credentials=entry.credentials,
        options=entry.options,
    )
    try:
        return await build(config, upstream).check()
    except Exception as exc:
        problem = getattr(exc, "problem", None)
        return {"ok": False, "error": problem() if problem else f"{type(exc).__name__}: {exc}"}
    finally:
        await upstream.close()
