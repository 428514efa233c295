"""Every value the database holds sealed with UNIGATE_SECRET_KEY: the check writers make before sealing
more, and `unigate secrets reseal`, which seals them all again with the first key (key rotation)."""

from __future__ import annotations

from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from gateway.errors import SecretKeyMismatch
from gateway.store.crypto import SealedValueUnreadable, Vault
from gateway.store.engine import atomic
from gateway.store.policy_tables import SigningKey
from gateway.store.tables import Connection

# Every sealed column, with the column that names its row in messages. A new one goes here, or rotation
# leaves it sealed with the old key (and the key check does not see it).
SEALED: tuple[tuple[type[Table], Column, Column], ...] = (
    (Connection, Connection.credentials, Connection.name),
    (SigningKey, SigningKey.private_jwk, SigningKey.kid),
)

WRONG_KEY = (
    "UNIGATE_SECRET_KEY is not the key this database is sealed with: it opens none of the stored "
    "credentials and signing keys; use the key the other nodes use (while rotating, NEW,OLD: "
    "docs/operations.md)"
)


def _label(table: type[Table]) -> str:
    return "connection" if table is Connection else "signing key"


async def _all_sealed() -> list[tuple[type[Table], Column, Column, dict[str, Any]]]:
    return [
        (table, column, name, row)
        for table, column, name in SEALED
        for row in await table.select(table._meta.primary_key, column, name)
    ]


async def key_opens_database(vault: Vault) -> bool:
    """False when the database holds sealed values and this key opens none of them. One decryption in the
    usual case (the newest connection's credentials open); all of them only when that one does not, to
    tell one stray row from a wrong key."""
    for table, column, _ in SEALED:
        newest = await table.select(column).order_by(table._meta.primary_key, ascending=False).first()
        if newest is not None:
            if vault.opens(newest[column._meta.name]):
                return True
            break
    else:
        return True  # nothing sealed yet: any key will do
    return any(vault.opens(row[column._meta.name]) for _, column, _, row in await _all_sealed())


async def require_database_key(vault: Vault) -> None:
    """Before sealing anything: refuse with a wrong key, whose values no other node could open (a node then
    keeps its last config, and refuses to start)."""
    if not await key_opens_database(vault):
        raise SecretKeyMismatch(f"{WRONG_KEY}; nothing was changed")


@atomic
async def reseal_all(vault: Vault) -> int:
    """Seal every sealed value again with the first key, in one transaction: all or, when one does not
    open with any key given, none (naming it). The config version is not moved: the values are the same."""
    await require_database_key(vault)
    count = 0
    for table, column, name, row in await _all_sealed():
        try:
            resealed = vault.reseal(row[column._meta.name])
        except SealedValueUnreadable:
            raise SealedValueUnreadable(
                f"the {_label(table)} {row[name._meta.name]!r} opens with none of the keys in "
                "UNIGATE_SECRET_KEY: nothing was resealed; add the key it was sealed with (NEW,OLD,...) "
                f"or give that {_label(table)} again"
            ) from None
        key = table._meta.primary_key
        # Only if it still holds what was read: a value saved meanwhile (new credentials, sealed with the
        # first key already) is not put back to the old one.
        await table.update({column: resealed}).where(
            (key == row[key._meta.name]) & (column == row[column._meta.name])
        )
        count += 1
    return count
