"""policies/authorize.py on a hand-built snapshot: the effective plan, overrides, priority and scopes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InsufficientScope, NotInPlan, NotSubscribed
from gateway.store.snapshot import (
    EMPTY,
    ConsumerEntry,
    ConsumerPolicyEntry,
    PlanEntry,
    Snapshot,
    SubscriptionEntry,
)
from policies.authorize import PRIORITIES, Authorize, PlanConfig, effective_plan, parse_plan, plan_dict
from policies.chain import Context

APP = ConsumerEntry(id=7, name="shop", default_connections={}, active=True)


def snapshot(
    config: dict[str, Any], overrides: dict[str, Any] | None = None, status: str = "active"
) -> Snapshot:
    plan = plan_dict(parse_plan(config))
    return Snapshot(
        version=1,
        keys={},
        connections={},
        plans={1: PlanEntry(1, "gold", plan, False)},
        subscriptions={(7, "orders"): SubscriptionEntry(3, 7, "orders", 1, status)},
        consumer_policies={7: ConsumerPolicyEntry(7, overrides or {}, (), ())} if overrides else {},
    )


def test_the_effective_plan_lays_the_consumers_overrides_over_the_plan() -> None:
    config = {
        "rate_limits": {"per_second": 5, "per_minute": 100},
        "quotas": {"per_day": 10},
        "priority": "low",
    }
    plain = effective_plan(snapshot(config), 7, "orders")
    assert plain is not None
    assert [c.limit for c in plain.rate_checks] == [5, 100] and plain.quotas.per_day == 10
    assert plain.priority == PRIORITIES["low"]

    overridden = effective_plan(
        snapshot(
            config, {"rate_limits": {"per_minute": 1000}, "quotas": {"per_day": None}, "priority": "high"}
        ),
        7,
        "orders",
    )
    assert overridden is not None
    assert [c.limit for c in overridden.rate_checks] == [5, 1000]
    assert overridden.quotas.per_day is None
    assert overridden.priority == PRIORITIES["high"] > PRIORITIES["normal"] > PRIORITIES["low"]
    assert effective_plan(snapshot(config), 7, "stockouts") is None


def test_an_override_tighter_than_another_limit_of_the_plan_applies_with_it() -> None:
    # per_minute 3 is valid alone, but less than the plan's 5 a second: both hold, 3 a minute winning.
    effective = effective_plan(
        snapshot({"rate_limits": {"per_second": 5}}, {"rate_limits": {"per_minute": 3}}), 7, "orders"
    )
    assert effective is not None and [c.limit for c in effective.rate_checks] == [5, 3]


def context(scope_needed: str, granted: frozenset[str] | None, snap: Snapshot) -> Context:
    async def nothing(*_: Any) -> None:
        return None

    ctx = Context({"type": "http"}, nothing, nothing, {}, "r", snap, "orders", scope_needed)
    ctx.consumer, ctx.granted_scopes = APP, granted
    return ctx


async def _done(_: Context) -> None:
    return None


async def test_authorize_sets_the_plan_and_priority_or_refuses() -> None:
    policy = Authorize()
    snap = snapshot({"apis": ["orders:read"], "priority": "high"})
    ctx = context("orders:read", None, snap)
    await policy(ctx, _done)
    assert ctx.plan is not None and ctx.plan.name == "gold" and ctx.priority == PRIORITIES["high"]

    with pytest.raises(NotInPlan):
        await policy(context("orders:write", None, snap), _done)
    with pytest.raises(InsufficientScope) as scope:
        await policy(context("orders:read", frozenset({"stockouts:read"}), snap), _done)
    assert scope.value.extra["required_scope"] == "orders:read"
    with pytest.raises(NotSubscribed) as pending:
        await policy(context("orders:read", None, snapshot({}, status="pending")), _done)
    assert "awaiting approval" in pending.value.detail
    with pytest.raises(NotSubscribed):
        await policy(context("orders:read", None, EMPTY), _done)


def test_a_plan_lists_its_defaults() -> None:
    assert plan_dict(PlanConfig()) == {
        "rate_limits": {"per_second": None, "per_minute": None, "strategy": "sliding-window"},
        "quotas": {"per_day": None, "per_month": None},
        "priority": "normal",
        "apis": ["stockouts", "orders", "logistics"],
    }
