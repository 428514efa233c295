"""Published APIs: which unified operations each connection serves, and the scope each needs."""

from __future__ import annotations

from typing import Any

from gateway.connectors.base import Connector
from gateway.connectors.registry import SYSTEMS
from gateway.store.tables import Connection

# Unified operation -> (API, scope, the connector method that serves it).
OPERATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("GET /v1/stockouts", "stockouts", "stockouts:read", "list_stockouts"),
    ("GET /v1/stockouts/{stockout_no}", "stockouts", "stockouts:read", "get_stockout"),
    ("GET /v1/orders", "orders", "orders:read", "list_orders"),
    ("GET /v1/orders/{order_no}", "orders", "orders:read", "get_order"),
    ("POST /v1/orders", "orders", "orders:write", "create_order"),
    ("GET /v1/logistics/tracking", "logistics", "logistics:read", "track"),
)


def operations_of(system: str) -> list[dict[str, str]]:
    """The operations a system's connector implements (it overrides the base's refusal)."""
    kind = SYSTEMS.get(system)
    if kind is None:
        return []
    return [
        {"operation": operation, "api": api, "scope": scope}
        for operation, api, scope, method in OPERATIONS
        if getattr(kind, method) is not getattr(Connector, method)
    ]


async def published() -> list[dict[str, Any]]:
    rows = await Connection.select(Connection.name, Connection.system).order_by(Connection.name)
    return [{**row, "operations": operations_of(row["system"])} for row in rows]
