"""Portal accounts: sign-up, sign-in, approval, password reset, locale, and admin API tokens."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from piccolo.columns import Column
from piccolo.engine.postgres import PostgresEngine
from piccolo.query.functions.string import Lower

from gateway.errors import Conflict, Forbidden, InvalidParameter, NotFound, Unauthorized
from gateway.store.accounts import ROLES, STATUSES, Account, AdminToken
from gateway.store.engine import atomic, hold_row
from gateway.store.snapshot import bump_version
from portal.i18n import LOCALES
from portal.services import audit
from portal.services.principal import CLI, Principal

TOKEN_PREFIX = "uga_"
MIN_PASSWORD = 10
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,99}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

PUBLIC_FIELDS = (
    Account.id,
    Account.username,
    Account.email,
    Account.role,
    Account.status,
    Account.locale,
    Account.created_at,
    Account.last_login_at,
)


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(field, f"the password needs at least {MIN_PASSWORD} characters")


def _check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise InvalidParameter(
            "username", "a username is 3-100 letters, digits or . _ @ -, starting with a letter or digit"
        )


def _check_email(email: str) -> None:
    if email and not _EMAIL.match(email):
        raise InvalidParameter("email", "that is not an email address")


def _check_locale(locale: str) -> None:
    if locale and locale not in LOCALES:
        raise InvalidParameter("locale", f"the language is one of: {', '.join(LOCALES)}")


def check_one_of(field: str, value: str, allowed: tuple[str, ...]) -> None:
    """A value from a fixed set (a role, a status), refused naming the field and the values it may take."""
    if value not in allowed:
        raise InvalidParameter(field, f"the {field} is one of: {', '.join(allowed)}")


async def _named(username: str, *columns: Column) -> dict[str, Any] | None:
    """The account a username names, its case aside (`Admin` is `admin`): usernames are unique whatever
    their case, kept as typed. Accounts made before that rule may differ only in case: the one spelled
    exactly as given is the one meant, and with none so spelled a name that matches several names none."""
    rows = await Account.select(*columns).where(Lower(Account.username) == username.lower())
    exact = [row for row in rows if row["username"] == username]
    if exact:
        return dict(exact[0])
    return dict(rows[0]) if len(rows) == 1 else None


def _check_new(username: str, password: str, *, email: str, role: str, locale: str) -> None:
    _check_username(username)
    _check_email(email)
    check_password(password)
    _check_locale(locale)
    check_one_of("role", role, ROLES)


async def _create(
    username: str,
    password: str,
    *,
    email: str,
    role: str,
    status: str,
    locale: str,
    actor: Principal | None,
    action: str,
) -> dict[str, Any]:
    """A new account, recorded as `action` by `actor` (None: the account itself, signing up)."""
    _check_new(username, password, email=email, role=role, locale=locale)
    # argon2 takes its time by design: hashed before the write transaction, which would hold SQLite's
    # write lock (and PostgreSQL's lock on the name) meanwhile, and hash again on a retry.
    password_hash = await hash_password(password)
    return await _insert(
        username,
        password_hash,
        email=email,
        role=role,
        status=status,
        locale=locale,
        actor=actor,
        action=action,
    )


# The check and the insert in one write transaction, so a name cannot be taken in between; its audit
# record too, so no account is made unrecorded.
@atomic
async def _insert(
    username: str,
    password_hash: str,
    *,
    email: str,
    role: str,
    status: str,
    locale: str,
    actor: Principal | None,
    action: str,
) -> dict[str, Any]:
    if isinstance(Account._meta.db, PostgresEngine):
        # Read committed lets two sign-ups, `Admin` and `admin`, both find the name free (the unique
        # column tells them apart): the second waits here for the first to commit, then sees its name.
        await Account.raw("SELECT pg_advisory_xact_lock(hashtext({}))", username.lower())
    if await Account.exists().where(Lower(Account.username) == username.lower()):
        raise Conflict(
            f"the username {username!r} is taken (usernames differing only in case are the same)",
            field="username",
        )
    rows = await Account.insert(
        Account(
            username=username,
            email=email,
            role=role,
            status=status,
            locale=locale,
            password_hash=password_hash,
        )
    )
    account = await get_account(int(rows[0]["id"]))
    by = actor or Principal(account["id"], username, role)
    await audit.record(by, action, username, after=account)
    return account


async def signup(
    username: str, password: str, *, email: str = "", locale: str = "", approval_required: bool
) -> dict[str, Any]:
    """A developer account; it waits for an admin when the installation asks for approval."""
    return await _create(
        username,
        password,
        email=email,
        role="developer",
        status="pending" if approval_required else "active",
        locale=locale,
        actor=None,
        action="account.signup",
    )


async def create_account(
    actor: Principal, username: str, password: str, *, role: str, email: str = "", locale: str = ""
) -> dict[str, Any]:
    actor.require_admin()
    return await _create(
        username,
        password,
        email=email,
        role=role,
        status="active",
        locale=locale,
        actor=actor,
        action="account.create",
    )


async def authenticate(username: str, password: str) -> Principal:
    """The principal for a username and password; one vague error for any wrong pair."""
    row = await _named(username)
    if row is None:
        await _verify(_DUMMY_HASH, password)
        raise Unauthorized("wrong username or password")
    if not await _verify(row["password_hash"], password):
        raise Unauthorized("wrong username or password")
    if row["status"] == "pending":
        raise Forbidden("this account is waiting for an administrator's approval")
    if row["status"] != "active":
        raise Forbidden("this account is disabled")
    if _hasher.check_needs_rehash(row["password_hash"]):
        await Account.update({Account.password_hash: await hash_password(password)}).where(
            Account.id == row["id"]
        )
    await Account.update({Account.last_login_at: datetime.now(UTC)}).where(Account.id == row["id"])
    return _principal(row)


def _principal(row: dict[str, Any], via_token: bool = False) -> Principal:
    return Principal(
        account_id=int(row["id"]),
        username=row["username"],
        role=row["role"],
        locale=row["locale"],
        via_token=via_token,
    )


async def session_principal(account_id: int, epoch: int) -> Principal | None:
    """The principal behind a session, or None when the account was disabled or its password reset."""
    row = await Account.select().where(Account.id == account_id).first()
    if row is None or row["status"] != "active" or row["session_epoch"] != epoch:
        return None
    return _principal(row)


async def session_epoch(account_id: int) -> int:
    row = await Account.select(Account.session_epoch).where(Account.id == account_id).first()
    return int(row["session_epoch"]) if row else -1


async def get_account(account_id: int) -> dict[str, Any]:
    row = await Account.select(*PUBLIC_FIELDS).where(Account.id == account_id).first()
    if row is None:
        raise NotFound(f"no account with id {account_id}")
    return dict(row)


async def find_account(username: str) -> dict[str, Any]:
    row = await _named(username, *PUBLIC_FIELDS)
    if row is None:
        raise NotFound(f"no account named {username!r}", field="username")
    return row


async def list_accounts(status: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
    """Accounts, of a status and a role when given. A value no account can have is refused: an empty list
    would read as "there are none", not "no such status"."""
    query = Account.select(*PUBLIC_FIELDS).order_by(Account.id)
    if status:
        check_one_of("status", status, STATUSES)
        query = query.where(Account.status == status)
    if role:
        check_one_of("role", role, ROLES)
        query = query.where(Account.role == role)
    return list(await query)


@atomic  # the change, its audit record and the config version commit together
async def set_status(actor: Principal, account_id: int, status: str) -> dict[str, Any]:
    """Approve (active), or disable: a disabled account's sessions end at once, and so does the API access
    of every app it owns (keys, OAuth clients and their tokens), on every node; enabling it again gives
    each app back the access its own state allows."""
    actor.require_admin()
    if status not in ("active", "disabled"):
        raise InvalidParameter("status", "the status is active or disabled")
    await hold_row(Account, account_id)
    before = await get_account(account_id)
    if account_id == actor.account_id and status != "active":
        raise InvalidParameter("status", "you cannot disable your own account")
    values: dict[Any, Any] = {Account.status: status}
    if status == "disabled":
        values[Account.session_epoch] = Account.session_epoch + 1
    await Account.update(values).where(Account.id == account_id)
    if status != before["status"]:
        # The snapshot reads the owner's status with each app: the nodes reload it when the version moves.
        await bump_version()
    after = await get_account(account_id)
    action = "account.approve" if before["status"] == "pending" and status == "active" else "account.status"
    await audit.record(actor, action, before["username"], before=before, after=after)
    return after


@atomic  # the new password and its audit record commit together (the hash is made before: argon2 is slow)
async def _set_password(actor: Principal, account_id: int, password_hash: str, action: str) -> None:
    """A new password ends every session the account has (their epoch moves on)."""
    account = await get_account(account_id)
    await Account.update(
        {Account.password_hash: password_hash, Account.session_epoch: Account.session_epoch + 1}
    ).where(Account.id == account_id)
    await audit.record(actor, action, account["username"], before=None, after=None)


async def reset_password(actor: Principal, account_id: int, password: str | None = None) -> str:
    """Set a new password (generated when none is given) and end the account's sessions."""
    actor.require_admin()
    password = password or secrets.token_urlsafe(12)
    check_password(password)
    await get_account(account_id)  # a missing account is refused before the hashing
    await _set_password(actor, account_id, await hash_password(password), "account.reset_password")
    return password


async def change_password(principal: Principal, current: str, new: str) -> None:
    """The signed-in user's own password: the current one proves it is them (a session left open on
    another machine is not enough), and every other session of the account ends."""
    row = await Account.select().where(Account.id == principal.account_id).first()
    if row is None:
        raise NotFound("no such account")
    if not await _verify(row["password_hash"], current):
        raise InvalidParameter("current_password", "the current password is wrong")
    check_password(new, "new_password")
    await _set_password(principal, row["id"], await hash_password(new), "account.change_password")


async def set_locale(principal: Principal, locale: str) -> None:
    _check_locale(locale)
    if principal.account_id is not None:
        await Account.update({Account.locale: locale}).where(Account.id == principal.account_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@atomic
async def create_token(actor: Principal, name: str = "") -> tuple[dict[str, Any], str]:
    """An admin API token for the acting admin; the token itself is returned once, never stored."""
    actor.require_admin()
    if actor.account_id is None:
        raise InvalidParameter("account", "a token belongs to an admin account")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    rows = await AdminToken.insert(
        AdminToken(account=actor.account_id, name=name, prefix=token[:12], token_hash=hash_token(token))
    )
    row = await _token_row(int(rows[0]["id"]))
    await audit.record(actor, "admin_token.create", row["prefix"], after=row)
    return row, token


def _token_columns() -> tuple[Any, ...]:
    """What the token pages and API show of an admin token (never its hash)."""
    return (
        AdminToken.id,
        AdminToken.account.username.as_alias("account"),
        AdminToken.name,
        AdminToken.prefix,
        AdminToken.created_at,
        AdminToken.last_used_at,
        AdminToken.revoked_at,
    )


async def _token_row(token_id: int) -> dict[str, Any]:
    row = await AdminToken.select(*_token_columns()).where(AdminToken.id == token_id).first()
    if row is None:
        raise NotFound(f"no admin token with id {token_id}")
    return dict(row)


async def list_tokens() -> list[dict[str, Any]]:
    return list(await AdminToken.select(*_token_columns()).order_by(AdminToken.id))


@atomic
async def revoke_token(actor: Principal, token_id: int) -> dict[str, Any]:
    actor.require_admin()
    before = await _token_row(token_id)
    await AdminToken.update({AdminToken.revoked_at: datetime.now(UTC)}).where(AdminToken.id == token_id)
    after = await _token_row(token_id)
    await audit.record(actor, "admin_token.revoke", before["prefix"], before=before, after=after)
    return after


async def token_principal(token: str) -> Principal | None:
    """The admin behind an API token; None if unknown, revoked, or its account is not an active admin."""
    row = (
        await AdminToken.select(
            AdminToken.id,
            AdminToken.revoked_at,
            *AdminToken.account.all_columns(),
        )
        .where(AdminToken.token_hash == hash_token(token))
        .first()
    )
    if row is None or row["revoked_at"] is not None:
        return None
    account = {
        key.removeprefix("account."): value for key, value in row.items() if key.startswith("account.")
    }
    if account["status"] != "active" or account["role"] != "admin":
        return None
    await AdminToken.update({AdminToken.last_used_at: datetime.now(UTC)}).where(AdminToken.id == row["id"])
    return _principal(account, via_token=True)


async def ensure_admin(username: str, password: str | None) -> str:
    """The demo's admin, kept across runs: created the first time, its password kept while it still
    signs in, replaced (and returned) when it does not. Returns the password that works now."""
    # Spelled exactly: another's account differing in case (`Admin`) is not made the admin (create refuses).
    row = await Account.select().where(Account.username == username).first()
    if row is None:
        password = password or secrets.token_urlsafe(12)
        await create_account(CLI, username, password, role="admin")
        return password
    if (
        password
        and row["role"] == "admin"
        and row["status"] == "active"
        and await _verify(row["password_hash"], password)
    ):
        return password
    await Account.update({Account.role: "admin", Account.status: "active"}).where(Account.id == row["id"])
    if row["status"] != "active":  # apps it owns may call again: the nodes must reload
        await bump_version()
    return await reset_password(CLI, int(row["id"]))
