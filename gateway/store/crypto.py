"""Connection credentials at rest: a Fernet token of their JSON, never clear text."""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken


class Vault:
    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(secret_key.encode())

    def seal(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(msgspec.json.encode(credentials)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            return msgspec.json.decode(self._fernet.decrypt(token.encode()))  # type: ignore[no-any-return]
        except InvalidToken:
            raise ValueError("credentials cannot be decrypted: UNIGATE_SECRET_KEY changed?") from None
