"""Who is acting: a signed-in account, an admin token's account, or the command line."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    account_id: int | None  # None for the command line
    username: str
    role: str  # "admin" | "developer"
    locale: str = ""
    via_token: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this needs an admin account")


CLI = Principal(account_id=None, username="cli", role="admin")
