"""What a running node holds: the config snapshot, the upstream session and built connectors."""

from __future__ import annotations

from typing import Any

from gateway.connectors.base import ConnectionConfig, Connector
from gateway.connectors.registry import build
from gateway.errors import CredentialsUnreadable, InvalidParameter
from gateway.store.snapshot import ConnectionEntry, SnapshotHolder
from gateway.upstream import Upstream


class Runtime:
    def __init__(self, snapshots: SnapshotHolder, upstream: Upstream) -> None:
        self.snapshots = snapshots
        self.upstream = upstream
        # Connectors compile their mappings when built: build once per connection version.
        self._connectors: dict[str, tuple[object, Connector]] = {}

    def connector(self, name: str) -> Connector:
        """The connector of a connection by name, in the current snapshot (workers; not the request path)."""
        entry = self.snapshots.current.connections.get(name)
        if entry is None:
            raise InvalidParameter("X-Connection", f"there is no connection named {name!r}")
        return self.connector_of(entry)

    def connector_of(self, entry: ConnectionEntry) -> Connector:
        if entry.unreadable:  # called with no credentials, the vendor would only say the signature is wrong
            raise CredentialsUnreadable(
                f"the credentials of connection {entry.name!r} cannot be read with this node's "
                "UNIGATE_SECRET_KEY (they were sealed with another key): an admin must give them again",
                system=entry.system,
            )
        cached = self._connectors.get(entry.name)
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
        self._connectors[entry.name] = (entry.updated_at, connector)
        return connector

    def for_request(self, state: dict[str, Any], tracking: bool = False) -> Connector:
        """The connector of the connection the policy chain resolved and checked for this request
        (policies/connection.py: `X-Connection` or the default; with `tracking`, `X-Tracking-Connection`
        or the logistics default), from the request's own snapshot."""
        entry: ConnectionEntry | None = state.get("tracking_connection" if tracking else "connection")
        if entry is None:  # a /v1 route the chain does not resolve a connection for: a bug, not the caller's
            raise RuntimeError("the policy chain resolved no connection for this request")
        return self.connector_of(entry)
