"""Sealed values at rest (connection credentials, signing keys' private JWKs): Fernet tokens of their JSON.

UNIGATE_SECRET_KEY may hold several keys, newest first: values open with any of them and are sealed with
the first, so a key can be rotated without a moment where some node cannot read (docs/operations.md)."""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway.errors import SecretKeyMismatch


def split_keys(secret_key: str) -> list[str]:
    """The keys of an UNIGATE_SECRET_KEY value, in order: comma-separated, blanks around them ignored."""
    return [part.strip() for part in secret_key.split(",") if part.strip()]


class SealedValueUnreadable(SecretKeyMismatch, ValueError):
    """One sealed value opens with none of this process's keys (sealed with another UNIGATE_SECRET_KEY)."""


class Vault:
    def __init__(self, secret_key: str) -> None:
        keys = split_keys(secret_key)
        if not keys:
            raise ValueError("UNIGATE_SECRET_KEY holds no key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def seal(self, value: dict[str, Any]) -> str:
        """Seal with the first key."""
        return self._fernet.encrypt(msgspec.json.encode(value)).decode()

    def open(self, token: str) -> dict[str, Any]:
        """Open with whichever key sealed it; SealedValueUnreadable when none of ours did."""
        try:
            return msgspec.json.decode(self._fernet.decrypt(token.encode()))  # type: ignore[no-any-return]
        except InvalidToken:
            raise SealedValueUnreadable(
                "a sealed value cannot be opened with this UNIGATE_SECRET_KEY: it was sealed with another key"
            ) from None

    def opens(self, token: str) -> bool:
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, token: str) -> str:
        """The same value sealed again with the first key (MultiFernet.rotate keeps its timestamp)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SealedValueUnreadable(
                "a sealed value cannot be opened with this UNIGATE_SECRET_KEY: it was sealed with another key"
            ) from None
