"""Helpers for the identity and limits tests: applications with a plan; waiting for a node to see a change."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.store import manage, policy_manage

_names = itertools.count()
DEFAULTS = {"stockouts": "wdt-demo", "orders": "wdt-demo", "logistics": "kd100-demo"}


def unique(prefix: str) -> str:
    """A name no other test uses (the tests share one database)."""
    return f"{prefix}-{time.monotonic_ns() % 10**9}-{next(_names)}"


async def application(
    plan_config: dict[str, Any] | None = None,
    *,
    apis: tuple[str, ...] = ("stockouts", "orders", "logistics"),
    grants: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    """A consumer subscribed to `apis` under a plan of its own, granted its defaults and `grants` (the
    connections it names in X-Connection); (consumer id, key, plan name)."""
    consumer = await manage.create_consumer(unique("app"), DEFAULTS, grants=list(grants), by_admin=True)
    plan = unique("plan")
    await policy_manage.create_plan(plan, plan_config or {})
    for api in apis:
        await policy_manage.subscribe(consumer, api, plan)
    key = (await manage.create_key(consumer, name="p1")).key
    return consumer, key, plan


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0, what: str = "the change") -> None:
    """Wait for a node to apply a config change (it reloads when the version moves)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not take effect within {within}s")
        await asyncio.sleep(0.05)
