"""Published APIs: which unified operations each connection serves, and the scope each needs."""

from __future__ import annotations

from typing import Any

from gateway.connectors.registry import OPERATIONS, implements
from gateway.store.tables import Connection


def operations_of(system: str) -> list[dict[str, str]]:
    """The operations a system's connector implements (it overrides the base's refusal)."""
    return [
        {"operation": operation, "api": api, "scope": scope}
        for operation, api, scope, method in OPERATIONS
        if implements(system, method)
    ]


async def published() -> list[dict[str, Any]]:
    rows = await Connection.select(Connection.name, Connection.system).order_by(Connection.name)
    return [{**row, "operations": operations_of(row["system"])} for row in rows]
