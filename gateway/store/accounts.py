"""The management plane's own tables: portal accounts, admin API tokens, sessions, the audit log and
the stored versions of the declarative configuration."""

from __future__ import annotations

from piccolo.columns import JSON, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

ROLES = ("admin", "developer")
STATUSES = ("pending", "active", "disabled")


class Account(Table, tablename="unigate_account"):
    """A person who signs in to the portal: an admin or a developer."""

    id = Serial(primary_key=True)
    username = Varchar(length=100, unique=True)
    email = Varchar(length=254, default="")
    role = Varchar(length=20, default="developer")  # ROLES
    password_hash = Text()  # argon2id, encoded with its parameters
    status = Varchar(length=20, default="active")  # STATUSES
    locale = Varchar(length=10, default="")  # "" = the installation's default
    # Bumped on password reset or disable: sessions carrying an older epoch are refused.
    session_epoch = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class AdminToken(Table, tablename="unigate_admin_token"):
    """A token for scripting the management API (`uga_…`); only its SHA-256 hash is stored."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, null=False)
    name = Varchar(length=100, default="")
    prefix = Varchar(length=16, index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class PortalSession(Table, tablename="unigate_portal_session"):
    """Server-side session data; the row is keyed by the SHA-256 of the cookie, never the cookie."""

    id = Serial(primary_key=True)
    key_hash = Varchar(length=64, unique=True)
    data = Text(default="")
    expires_at = Timestamptz(null=True, default=None)


class AuditEvent(Table, tablename="unigate_audit_event"):
    """One change made through the management plane: who, what, before and after (secrets redacted)."""

    id = Serial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    actor = Varchar(length=100)  # username, or "cli"
    action = Varchar(length=60)  # e.g. "connection.update"
    target = Varchar(length=200, default="")
    before = JSON(null=True, default=None)
    after = JSON(null=True, default=None)


class ConfigSnapshot(Table, tablename="unigate_config_snapshot"):
    """A version of the declarative configuration (YAML) as applied, for diffing and rollback."""

    id = Serial(primary_key=True)
    created_at = Timestamptz(default=TimestamptzNow())
    actor = Varchar(length=100)
    comment = Varchar(length=200, default="")
    document = Text()


ACCOUNT_TABLES: list[type[Table]] = [Account, AdminToken, PortalSession, AuditEvent, ConfigSnapshot]
