"""What a running node holds: the config snapshot, the upstream session and built connectors."""

from __future__ import annotations

from gateway.connectors.base import ConnectionConfig, Connector
from gateway.connectors.registry import build
from gateway.errors import ConnectionNotGranted, InvalidParameter
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

    def for_consumer(
        self, consumer: ConsumerEntry, resource: str, chosen: str | None, header: str = "X-Connection"
    ) -> Connector:
        """The connection named in the request (`header`), else the consumer's default for this resource,
        if the consumer may use it: an open connection, one granted to it, or any when granted `*`."""
        name = chosen or consumer.default_connection(resource)
        if not name:
            raise InvalidParameter(
                header,
                f"choose a connection with the {header} header: no default is set for {resource}",
            )
        entry = self.snapshots.current.connections.get(name)
        if entry is None and (not chosen or "*" in consumer.connections):
            # Its own default, or a caller that may use every connection: no name is revealed by saying so.
            raise InvalidParameter(header, f"there is no connection named {name!r}")
        if entry is None or not consumer.may_use(entry):
            # An unknown name and an ungranted one answer alike, so callers cannot list the connections.
            if chosen:
                raise ConnectionNotGranted(
                    f"this application may not use the connection {name!r} named in {header}: "
                    "ask an admin to grant it",
                    field=header,
                )
            raise ConnectionNotGranted(
                f"this application's default connection for {resource}, {name!r}, is not granted to it: "
                "ask an admin to grant it"
            )
        return self.connector(name)
