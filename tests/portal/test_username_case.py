"""Usernames are one whatever their case: `Admin` cannot sign up beside `admin` (and so cannot act as it
in the audit log), either one signs in as it, and accounts made before that rule keep working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.errors import Conflict, Unauthorized
from gateway.store.accounts import Account as AccountRow
from portal.services import accounts
from portal.services.principal import CLI
from tests.conftest import Gateway, bound_store, gateway_env, migrate
from tests.portal.conftest import PASSWORD, Account, Session, sign_in, unique
from tests.portal.test_forms import field_error


async def test_signing_up_with_a_taken_name_in_another_case_is_refused(
    gateway: Gateway, developer: Account
) -> None:
    session = Session(httpx.AsyncClient(base_url=gateway.url, timeout=30))
    try:
        await session.get("/portal/signup")
        twin = developer.username.upper()
        refused = await session.form("/portal/signup", {"username": twin, "password": "another password"})
        assert refused.status_code == 409
        assert "taken" in field_error(refused.text, "username")
    finally:
        await session.http.aclose()
    with pytest.raises(Conflict):
        await accounts.create_account(CLI, developer.username.title(), PASSWORD, role="admin")
    assert (await accounts.find_account(twin))["id"] == developer.id  # still the one account


async def test_any_case_of_a_username_signs_in_to_its_account(gateway: Gateway, developer: Account) -> None:
    other_case = Account(developer.id, developer.username.upper(), developer.password, developer.role)
    session = await sign_in(gateway.url, other_case)
    try:
        home = await session.get("/portal")
        assert home.status_code == 200 and developer.username in home.text
    finally:
        await session.http.aclose()


async def test_accounts_differing_only_in_case_from_before_the_rule_each_keep_their_own(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        # As they were stored before usernames were compared whatever their case.
        for name, password in (("shop", "lower password"), ("Shop", "upper password")):
            await AccountRow.insert(
                AccountRow(
                    username=name, role="developer", password_hash=await accounts.hash_password(password)
                )
            )
        lower = await accounts.authenticate("shop", "lower password")
        upper = await accounts.authenticate("Shop", "upper password")
        assert (lower.username, upper.username) == ("shop", "Shop")
        assert lower.account_id != upper.account_id
        with pytest.raises(Unauthorized):  # exactly spelled, the name is that account's only
            await accounts.authenticate("shop", "upper password")
        with pytest.raises(Unauthorized):  # spelled as neither, it names no one account
            await accounts.authenticate("SHOP", "upper password")
        with pytest.raises(Conflict):
            await accounts.signup("sHOP", PASSWORD, approval_required=False)


async def test_two_sign_ups_differing_in_case_at_once_make_one_account(
    database_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    async with bound_store(env):
        name = unique("race")
        outcomes = await asyncio.gather(
            *(
                accounts.signup(spelling, PASSWORD, approval_required=False)
                for spelling in (name, name.upper(), name.title(), name.capitalize())
            ),
            return_exceptions=True,
        )
        made = [outcome for outcome in outcomes if isinstance(outcome, dict)]
        assert len(made) == 1, outcomes
        assert all(isinstance(outcome, Conflict) for outcome in outcomes if outcome not in made)
        assert len(await AccountRow.select(AccountRow.id)) == 1
