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


def build(config: ConnectionConfig, upstream: Upstream) -> Connector:
    try:
        kind = SYSTEMS[config.system]
    except KeyError:
        raise InvalidParameter(
            "system", f"unknown system {config.system!r}; known: {', '.join(SYSTEMS)}"
        ) from None
    return kind(config, upstream)
