"""What sits between a caller and a handler: one module per policy, run in the order `build_chain` fixes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.settings import Settings
from gateway.store.snapshot import SnapshotHolder
from policies.admission import Admission, AdmissionConfig
from policies.auth import Authenticate, KeyUsage
from policies.authorize import Authorize
from policies.body_limit import BodyLimit
from policies.cache import Cache, LocalStore, RedisStore
from policies.chain import Policy
from policies.connection import ResolveConnection
from policies.cors import Cors
from policies.counters import make_counters
from policies.ipfilter import IpFilter, Proxies
from policies.metering import Metering, UsageRecorder
from policies.oauth import TokenVerifier
from policies.quota import Quota
from policies.quota_seed import refresh_seconds
from policies.ratelimit import RateLimit


@dataclass
class PolicyDeps:
    """What policies may use: settings, the config snapshot, shared state (Redis or None)."""

    settings: Settings
    snapshots: SnapshotHolder
    redis: Any
    usage: KeyUsage
    recorder: UsageRecorder  # usage metering, flushed by the app's background task


def build_chain(deps: PolicyDeps) -> list[Policy]:
    """The policies, outermost first. The order is part of the contract (docs/policies.md)."""
    settings = deps.settings
    chain: list[Policy] = [
        Cors(),
        Authenticate(deps.usage, TokenVerifier(settings.token_issuer)),
        Metering(deps.recorder),
        IpFilter(Proxies(settings.trusted_proxies)),
        Authorize(),
        ResolveConnection(),
        BodyLimit(settings.max_body_bytes),
        RateLimit(),
        Quota(
            make_counters(deps.redis),
            settings.quota_timezone,
            # Metered days are usage-timezone days: they name quota days only when the two are one zone.
            recorder=deps.recorder if settings.usage_timezone == settings.quota_timezone else None,
            seed_every=refresh_seconds(settings.metering_flush_seconds),
        ),
        Admission(
            AdmissionConfig(
                max_in_flight=settings.admission_max_in_flight,
                max_queue=settings.admission_queue,
                max_wait_seconds=settings.admission_max_wait_seconds,
            )
        ),
        Cache(
            RedisStore(deps.redis) if deps.redis is not None else LocalStore(settings.cache_max_entries),
            settings.cache_ttl,
        ),
    ]
    if not settings.policies_enabled:
        # UNIGATE_POLICIES=off, the benchmark's baseline: who is calling, and the connection it may use
        # (the grants are access control, not a policy to switch off).
        return [policy for policy in chain if isinstance(policy, Authenticate | ResolveConnection)]
    return chain


async def close_chain(chain: Sequence[Policy]) -> None:
    """Close what policies opened themselves (the counters' Redis connection); at shutdown, before Redis."""
    for policy in chain:
        close = getattr(policy, "aclose", None)
        if close is not None:
            await close()
