"""Run Piccolo's migrations for unigate's tables against the configured database."""

from __future__ import annotations

from piccolo.apps.migrations.commands.forwards import run_forwards


async def migrate() -> None:
    result = await run_forwards(app_name="unigate")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")
