"""What a running node holds: the config snapshot, the upstream session and built connectors."""

from __future__ import annotations

from gateway.connectors.base import ConnectionConfig, Connector
from gateway.connectors.registry import build
from gateway.errors import InvalidParameter
from gateway.store.snapshot import ConsumerEntry, SnapshotHolder
from gateway.upstream import Upstream


class Runtime:
    def __init__(self, snapshots: SnapshotHolder, upstream: Upstream) -> None:
        self.snapshots = snapshots
        self.upstream = upstream
        # Connectors compile their mappings when built: build once per connection version.
        self._connectors: dict[str, tuple[object, Connector]] = {}

    def connector(self, name: str) -> Connector:
        entry = self.snapshots.current.connections.get(name)
        if entry is None:
            raise InvalidParameter("X-Connection", f"there is no connection named {name!r}")
        cached = self._connectors.get(name)
        if cached is not None and cached[0] == entry.updated_at:
            return cached[1]
        connector = build(
            ConnectionConfig(
                name=entry.name,
                system=entry.system,
                base_url=entry.base_url,
                credentials=entry.credentials,
                options=entry.options,
            ),
            self.upstream,
        )
        self._connectors[name] = (entry.updated_at, connector)
        return connector

    def for_consumer(self, consumer: ConsumerEntry, resource: str, chosen: str | None) -> Connector:
        """The connection named in the request, else the consumer's default for this resource."""
        name = chosen or consumer.default_connection(resource)
        if not name:
            raise InvalidParameter(
                "X-Connection",
                f"choose a connection with the X-Connection header: no default is set for {resource}",
            )
        return self.connector(name)
