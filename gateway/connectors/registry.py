"""The systems unigate speaks: system name -> connector class. Adding a system is one line here."""

from __future__ import annotations

from gateway.connectors.base import ConnectionConfig, Connector
from gateway.connectors.kuaidi100.connector import Kuaidi100Connector
from gateway.connectors.wangdiantong.connector import WangdiantongConnector
from gateway.errors import InvalidParameter
from gateway.upstream import Upstream

SYSTEMS: dict[str, type[Connector]] = {
    WangdiantongConnector.system: WangdiantongConnector,
    Kuaidi100Connector.system: Kuaidi100Connector,
}


# Unified operation -> (API, scope, the connector method that serves it).
OPERATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("GET /v1/stockouts", "stockouts", "stockouts:read", "list_stockouts"),
    ("GET /v1/stockouts/{stockout_no}", "stockouts", "stockouts:read", "get_stockout"),
    ("GET /v1/orders", "orders", "orders:read", "list_orders"),
    ("GET /v1/orders/{order_no}", "orders", "orders:read", "get_order"),
    ("POST /v1/orders", "orders", "orders:write", "create_order"),
    ("GET /v1/logistics/tracking", "logistics", "logistics:read", "track"),
)


def implements(system: str, method: str) -> bool:
    """Whether a system's connector implements a unified operation (overrides the base's refusal)."""
    kind = SYSTEMS.get(system)
    return kind is not None and getattr(kind, method) is not getattr(Connector, method)


def apis_of(system: str) -> list[str]:
    """The unified APIs (`stockouts`, `logistics`) a system serves at least one operation of."""
    return list(dict.fromkeys(api for _, api, _, method in OPERATIONS if implements(system, method)))


def systems_serving(api: str) -> list[str]:
    return sorted(system for system in SYSTEMS if api in apis_of(system))


def build(config: ConnectionConfig, upstream: Upstream) -> Connector:
    try:
        kind = SYSTEMS[config.system]
    except KeyError:
        raise InvalidParameter(
            "system", f"unknown system {config.system!r}; known: {', '.join(SYSTEMS)}"
        ) from None
    return kind(config, upstream)
