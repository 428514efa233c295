"""What every connector offers the unified API: operations on canonical records, as plain dicts.

A connector declares the operations it supports; the ones it does not are refused with
`UnsupportedOperation` here, so adding a system never touches the unified handlers.
"""

from __future__ import annotations

import base64
import functools
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from gateway.errors import InvalidParameter, UnsupportedOperation
from gateway.mapping import Mapping, compile_mapping, load_yaml
from gateway.upstream import Upstream

Record = dict[str, Any]


class ListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A canonical list request; the connector turns it into vendor calls."""

    updated_from: datetime
    updated_to: datetime
    status: str | None = None
    shop: str | None = None
    warehouse: str | None = None
    limit: int = 20
    include_remote_data: bool = False
    # The unified API's list parameters the caller sent (updated_from, ..., limit, include), filled only
    # when a cursor is sent: a cursor continues one list, and a filter sent with it must be the one that
    # list was made with. Only what was sent is compared (`updated_to` absent means "now", not the cursor's).
    given: frozenset[str] = frozenset()


class Page(msgspec.Struct, frozen=True):
    items: list[Record]
    next_cursor: str | None


class OperationInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A vendor-level operation a scheme can use: read records (source), write them (target), or look
    one up per record (enrich). `fields` lists the record's field paths and types, for the designer."""

    name: str
    role: str  # "source" | "target" | "enrich"
    title: str
    key: str | None = None  # the field that identifies a record
    max_batch: int | None = None  # target: most records one vendor call takes
    incremental: bool = False  # source: can read only what changed since a time
    params: dict[str, str] = {}  # parameter -> what it means
    fields: dict[str, str] = {}  # field path -> type


class SourcePage(msgspec.Struct, frozen=True):
    """One vendor call's worth of raw records; `cursor` continues the pull, None when it is complete."""

    records: list[Record]
    cursor: str | None


class PushOutcome(msgspec.Struct, frozen=True):
    """What the vendor said about one pushed record."""

    ok: bool
    answer: dict[str, Any]
    error: str | None = None
    retryable: bool = False


class ConnectionConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    system: str
    base_url: str
    credentials: dict[str, Any]
    options: dict[str, Any] = {}


C = TypeVar("C", bound=msgspec.Struct)


def encode_cursor(state: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")


def decode_cursor(cursor: str, kind: type[C]) -> C:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=kind)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise bad_cursor() from None


def bad_cursor() -> InvalidParameter:
    """The refusal of a cursor that is not one of ours (garbled, edited, or another list's)."""
    return InvalidParameter("cursor", "cursor is not one this API returned; start again without it")


def cursor_of_another_list(differing: list[str]) -> InvalidParameter:
    """The refusal of a cursor sent with filters other than those of the list that made it: answering
    would page through the first list while the caller believes they see the second."""
    return InvalidParameter(
        "cursor",
        f"this cursor belongs to a list with other filters ({', '.join(differing)}); "
        "send the same filters as the first page, or none",
    )


def cursor_of_another_connection(made_by: str, used_on: str) -> InvalidParameter:
    """The refusal of a cursor made by one connection and sent to another: its places mean nothing there."""
    return InvalidParameter(
        "cursor",
        f"this cursor was made by connection {made_by}, not {used_on}; "
        f"send it with X-Connection: {made_by}, or start again without it",
    )


def load_mappings(
    folder: Path, names: list[str], tables: dict[str, dict[str, str]] | None = None
) -> dict[str, Mapping]:
    """Compile a connector's YAML mappings once, when the connector is built.

    Lookup tables come from `tables.yaml` beside the mappings, plus the connector's own.
    """
    all_tables = dict(_read_tables(folder / "tables.yaml"))
    all_tables.update(tables or {})
    return {name: compile_mapping(folder / f"{name}.yaml", tables=all_tables) for name in names}


@functools.cache
def _read_tables(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    return {
        name: {str(k): str(v) for k, v in table.items()}
        # Read as specs are (YAML 1.2): codes like 0123, NO or 1.10 stay as written, not 83, False or 1.1
        for name, table in load_yaml(path.read_text(encoding="utf-8")).items()
    }


class Connector:
    """Base of every connector; subclasses override the operations they support."""

    system: ClassVar[str]
    # Vendor-level operations for schemes (raw records, batches, per-record results).
    operations: ClassVar[tuple[OperationInfo, ...]] = ()

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        self.config = config
        self.upstream = upstream
        # Caps, timeout, retries and breaker of this connection, applied by the way out to every call.
        self.target = upstream.target(config.name, self.system, config.options)

    @property
    def name(self) -> str:
        return self.config.name

    def _unsupported(self, operation: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"connection {self.name!r} ({self.system}) does not support {operation}",
            connection=self.name,
        )

    async def list_stockouts(self, query: ListQuery, cursor: str | None) -> Page:
        raise self._unsupported("listing stockouts")

    async def get_stockout(self, stockout_no: str, include_remote_data: bool) -> Record:
        raise self._unsupported("reading a stockout")

    async def list_orders(self, query: ListQuery, cursor: str | None) -> Page:
        raise self._unsupported("listing orders")

    async def get_order(self, order_no: str, include_remote_data: bool) -> Record:
        raise self._unsupported("reading an order")

    async def create_order(self, order: Record) -> Record:
        raise self._unsupported("creating orders")

    async def track(self, carrier: str, tracking_no: str, phone: str | None) -> Record:
        raise self._unsupported("express tracking")

    async def check(self) -> Record:
        """A real signed call that proves the credentials work ("test connection")."""
        raise self._unsupported("a connection test")

    # -- vendor-level operations, for schemes -------------------------------------------------

    def operation(self, name: str, role: str) -> OperationInfo:
        """The named operation, if this connection offers it in that role."""
        for info in self.operations:
            if info.name == name and info.role == role:
                return info
        offered = ", ".join(info.name for info in self.operations if info.role == role) or "none"
        raise InvalidParameter(
            "operation",
            f"connection {self.name!r} ({self.system}) has no {role} operation {name!r}; offered: {offered}",
        )

    async def pull(
        self,
        operation: str,
        params: dict[str, Any],
        since: datetime | None,
        until: datetime,
        cursor: str | None,
    ) -> SourcePage:
        """One page of the vendor's raw records changed in [since, until]; continue with the cursor."""
        raise self._unsupported(f"reading {operation}")

    async def push(self, operation: str, records: list[Record], params: dict[str, Any]) -> list[PushOutcome]:
        """Write vendor records (at most the operation's max_batch); one outcome per record, in order."""
        raise self._unsupported(f"writing {operation}")

    async def find_pushed(self, operation: str, records: list[Record], params: dict[str, Any]) -> list[bool]:
        """Whether each record is already in the backend (used after a crash, before pushing again)."""
        raise self._unsupported(f"looking up {operation}")

    async def enrich(self, operation: str, inputs: dict[str, Any]) -> Record:
        """The vendor's raw answer for one record's inputs."""
        raise self._unsupported(f"enriching with {operation}")
