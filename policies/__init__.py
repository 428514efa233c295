"""What sits between a caller and a handler: one module per policy, run in the order `build_chain` fixes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.settings import Settings
from gateway.store.snapshot import SnapshotHolder
from policies.auth import Authenticate, KeyUsage
from policies.chain import Policy


@dataclass
class PolicyDeps:
    """What policies may use: settings, the config snapshot, shared state (Redis or None)."""

    settings: Settings
    snapshots: SnapshotHolder
    redis: Any
    usage: KeyUsage


def build_chain(deps: PolicyDeps) -> list[Policy]:
    """The policies, outermost first. The order is part of the contract (docs/policies.md)."""
    return [
        Authenticate(deps.usage),
    ]
