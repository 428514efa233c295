"""Policy: may this caller use this operation? Scope, subscription, plan; then the effective plan on ctx.

Schema: `PlanConfig` (rate limits, quotas, priority class, allowed APIs) and the per-consumer
overrides laid over it. Handler: `Authorize` refuses with 403 `insufficient_scope`,
`not_subscribed` or `not_in_plan`, and otherwise sets `ctx.plan` (the subscription's effective
plan, which the limit policies count against) and `ctx.priority` (for admission).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.errors import InsufficientScope, InvalidParameter, NotInPlan, NotSubscribed
from gateway.store.snapshot import Snapshot
from policies.chain import APIS, Context, Gate
from policies.config import invalid, parse
from policies.counters import Check
from policies.quota import Quotas, check_quotas
from policies.ratelimit import RateLimits, check_rate_limits, rate_checks

log = logging.getLogger("unigate.policies")

# Admission serves higher classes first (policies/admission.py reads ctx.priority).
PRIORITIES: dict[str, int] = {"low": 0, "normal": 1, "high": 2}
OPERATIONS = ("read", "write")
# What a plan may list in `apis`: a whole API, or one of its operations.
PLAN_APIS = frozenset([*APIS, *(f"{api}:{op}" for api in APIS for op in OPERATIONS)])
OVERRIDABLE = ("rate_limits", "quotas", "priority")


class PlanConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a plan grants a subscription; validated by `parse_plan` when a plan is saved."""

    rate_limits: RateLimits = RateLimits()
    quotas: Quotas = Quotas()
    priority: str = "normal"  # a key of PRIORITIES
    # "orders" allows every operation of the orders API, "orders:read" only reading it.
    apis: list[str] = msgspec.field(default_factory=lambda: list(APIS))


def parse_plan(raw: Mapping[str, Any], field: str = "config") -> PlanConfig:
    """A plan's config, or InvalidParameter naming the field (`config.rate_limits.per_minute`)."""
    config = parse(PlanConfig, dict(raw), field)
    check_rate_limits(config.rate_limits, f"{field}.rate_limits")
    check_quotas(config.quotas, f"{field}.quotas")
    if config.priority not in PRIORITIES:
        raise invalid(
            f"{field}.priority", f"{config.priority!r} is not a priority class; use {', '.join(PRIORITIES)}"
        )
    for n, api in enumerate(config.apis):
        if api not in PLAN_APIS:
            raise invalid(f"{field}.apis[{n}]", f"unknown API {api!r}; known: {', '.join(sorted(PLAN_APIS))}")
    if not config.apis:
        raise invalid(f"{field}.apis", "a plan must allow at least one API")
    return config


def plan_dict(config: PlanConfig) -> dict[str, Any]:
    return msgspec.to_builtins(config)  # type: ignore[no-any-return]


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`, key by key inside objects; an explicit null removes a limit."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_overrides(raw: Mapping[str, Any], field: str = "overrides") -> dict[str, Any]:
    """Per-consumer overrides: a partial plan config (`rate_limits`, `quotas`, `priority` only)."""
    for key in raw:
        if key not in OVERRIDABLE:
            raise invalid(
                f"{field}.{key}", f"cannot be overridden per consumer; use one of {', '.join(OVERRIDABLE)}"
            )
    parse_plan(merge(plan_dict(PlanConfig()), raw), field)
    return dict(raw)


@dataclass(frozen=True, slots=True)
class EffectivePlan:
    """A subscription's plan with the consumer's overrides applied, compiled once per config snapshot."""

    subscription_id: int
    status: str
    name: str
    priority: int
    allowed: frozenset[str]  # scopes ("orders:read") the plan allows
    identifiers: tuple[str, ...]  # what counters are keyed by: (consumer id, api)
    rate_checks: tuple[Check, ...]
    quotas: Quotas


def effective_plan(snapshot: Snapshot, consumer_id: int, api: str) -> EffectivePlan | None:
    subscription = snapshot.subscriptions.get((consumer_id, api))
    if subscription is None:
        return None
    plan = snapshot.plans[subscription.plan_id]
    raw = plan.config
    rules = snapshot.consumer_policies.get(consumer_id)
    if rules is not None and rules.overrides:
        raw = merge(raw, rules.overrides)
    try:
        config = parse_plan(raw)
    except InvalidParameter as exc:
        # Each part was valid when saved; only their combination breaks a rule meant for writing one plan
        # (an override of 3 a minute under the plan's 5 a second). Every limit still holds together, the
        # tightest winning, so all are applied: ignoring the override would quietly lift a restriction.
        log.info(
            "consumer overrides tighter than the plan", extra={"consumer": consumer_id, "note": exc.detail}
        )
        try:
            config = parse(PlanConfig, raw, "config")
        except InvalidParameter as broken:
            log.warning(
                "consumer overrides ignored", extra={"consumer": consumer_id, "problem": broken.detail}
            )
            config = parse_plan(plan.config)
    identifiers = (str(consumer_id), api)
    allowed = frozenset(
        f"{api}:{op}" for entry in config.apis for op in OPERATIONS if entry in (api, f"{api}:{op}")
    )
    return EffectivePlan(
        subscription_id=subscription.id,
        status=subscription.status,
        name=plan.name,
        priority=PRIORITIES[config.priority],
        allowed=allowed,
        identifiers=identifiers,
        rate_checks=rate_checks(config.rate_limits, identifiers),
        quotas=config.quotas,
    )


class Authorize(Gate):
    """Policy: scope, subscription and plan checks; sets `ctx.plan` and `ctx.priority`."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._plans: dict[tuple[int, str], EffectivePlan | None] = {}

    def plan_for(self, snapshot: Snapshot, consumer_id: int, api: str) -> EffectivePlan | None:
        if snapshot is not self._snapshot:  # a new config: compile again, lazily
            self._snapshot, self._plans = snapshot, {}
        key = (consumer_id, api)
        if key not in self._plans:
            self._plans[key] = effective_plan(snapshot, consumer_id, api)
        return self._plans[key]

    def before(self, ctx: Context) -> None:
        assert ctx.consumer is not None and ctx.api is not None and ctx.scope_needed is not None
        needed = ctx.scope_needed
        if ctx.granted_scopes is not None and needed not in ctx.granted_scopes:
            raise InsufficientScope(
                f"this call needs the scope {needed!r}; the token has not got it", scope=needed
            )
        plan = self.plan_for(ctx.snapshot, ctx.consumer.id, ctx.api)
        if plan is None:
            raise NotSubscribed(f"{ctx.consumer.name} is not subscribed to the {ctx.api} API")
        if plan.status != "active":
            state = "awaiting approval" if plan.status == "pending" else plan.status
            raise NotSubscribed(f"the subscription of {ctx.consumer.name} to the {ctx.api} API is {state}")
        if needed not in plan.allowed:
            raise NotInPlan(f"the plan {plan.name!r} does not include {needed}")
        ctx.plan, ctx.priority = plan, plan.priority
