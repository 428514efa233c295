"""The navigation of the portal shell. A feature adds its pages to the menu with `register`:

    register(NavEntry("admin", "/admin/schemes", "Schemes", order=60))

"developer" entries show to every signed-in account, "admin" entries to admins only. Labels are
English message ids, translated by portal.i18n.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavEntry:
    section: str  # "developer" | "admin"
    href: str
    label: str
    order: int = 100


_ENTRIES: list[NavEntry] = []


def register(*entries: NavEntry) -> None:
    for entry in entries:
        if entry not in _ENTRIES:
            _ENTRIES.append(entry)


def entries(section: str) -> list[NavEntry]:
    return sorted((e for e in _ENTRIES if e.section == section), key=lambda e: (e.order, e.href))


register(
    NavEntry("developer", "/portal", "My apps", 10),
    NavEntry("developer", "/portal/reference", "API reference", 30),
    NavEntry("developer", "/portal/account", "Account", 90),
    NavEntry("admin", "/admin", "Dashboard", 10),
    NavEntry("admin", "/admin/connections", "Connections", 20),
    NavEntry("admin", "/admin/apis", "APIs", 25),
    NavEntry("admin", "/admin/plans", "Plans", 30),
    NavEntry("admin", "/admin/subscriptions", "Subscriptions", 35),
    NavEntry("admin", "/admin/consumers", "Consumers", 40),
    NavEntry("admin", "/admin/keys", "Keys", 45),
    NavEntry("admin", "/admin/accounts", "Accounts", 50),
    NavEntry("admin", "/admin/audit", "Audit log", 80),
    NavEntry("admin", "/admin/config", "Configuration", 85),
)
