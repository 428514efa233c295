"""Serves the built-in vendor simulators on real ports, for `unigate simulators` and the demo."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.simdata import DEFAULT_SEED, resolve_anchor
from gateway.connectors.wangdiantong import simulator as wdt_sim


def demo_apps(*, seed: int = DEFAULT_SEED, anchor: datetime | None = None) -> dict[str, web.Application]:
    """A seeded Wangdiantong ERP, an empty one (a trade_push target) and kuaidi100, on demo credentials."""
    # one anchor for all, so kuaidi100 tracks exactly the ERP's shipments even across an hour boundary
    anchor = resolve_anchor(anchor)
    wdt = wdt_sim.DEFAULT_CREDENTIALS
    return {
        "wdt-demo": wdt_sim.create_app(wdt_sim.WdtSimulatorConfig(**wdt, seed=seed, anchor=anchor)),
        "wdt-target": wdt_sim.create_app(
            wdt_sim.WdtSimulatorConfig(**wdt, seed=seed, anchor=anchor, seed_data=False)
        ),
        "kd100-demo": kd100_sim.create_app(
            kd100_sim.Kd100SimulatorConfig(
                **kd100_sim.DEFAULT_CREDENTIALS, seed=seed, anchor=anchor, follow_clock=True
            )
        ),
    }


async def serve_simulators(
    host: str,
    wdt_port: int,
    wdt_target_port: int,
    kd100_port: int,
    *,
    seed: int = DEFAULT_SEED,
    anchor: datetime | None = None,
) -> None:
    """Serve the demo simulators until cancelled (Ctrl-C), then close them."""
    ports = {"wdt-demo": wdt_port, "wdt-target": wdt_target_port, "kd100-demo": kd100_port}
    runners: list[web.AppRunner] = []
    try:
        for name, app in demo_apps(seed=seed, anchor=anchor).items():
            runner = web.AppRunner(app, access_log=None)  # the gateway logs its upstream calls
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, ports[name]).start()
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()
