"""Disabling a developer account cuts the API access of every app it owns (keys, OAuth clients, tokens
already issued) on the running gateway; enabling it again restores each app as it stood."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from piccolo.engine.base import Engine

from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from gateway.store.snapshot import current_version, load_snapshot
from portal.services import accounts
from portal.services.principal import CLI, Principal
from tests.conftest import SECRET_KEY, Gateway, bound_store, gateway_env, migrate
from tests.policies.p1_support import DEFAULTS, application, unique, until
from tests.portal.conftest import Account as PortalAccount
from tests.portal.conftest import sign_in

PASSWORD = "correct horse battery"
OWNER_DISABLED = "its owner account is disabled"


class OwnedApp:
    """An app a developer registered: subscribed to every API, with an API key and an OAuth client."""

    def __init__(self, consumer: int, key: str, client_id: str, secret: str) -> None:
        self.consumer, self.key, self.client_id, self.secret = consumer, key, client_id, secret


async def owned_app(vault: Vault, owner: int) -> OwnedApp:
    consumer = await manage.create_consumer(unique("dave-app"), DEFAULTS, owner=owner)
    plan = unique("plan")
    await policy_manage.create_plan(plan, {})
    for api in ("stockouts", "orders", "logistics"):
        await policy_manage.subscribe(consumer, api, plan)
    key = (await manage.create_key(consumer, name="dave")).key
    client = await policy_manage.create_oauth_client(vault, consumer, ["stockouts:read"], name="dave")
    return OwnedApp(consumer, key, client.client_id, client.client_secret)


async def stockouts(http: httpx.AsyncClient, credential: str) -> httpx.Response:
    return await http.get(
        "/v1/stockouts", params={"limit": 1}, headers={"Authorization": f"Bearer {credential}"}
    )


async def token(http: httpx.AsyncClient, app: OwnedApp) -> httpx.Response:
    return await http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(app.client_id, app.secret)
    )


def refused(answer: httpx.Response, words: str) -> None:
    """The refusal a suspended app gets: 401 unauthorized, problem+json, its detail saying why."""
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] == "unauthorized" and words in body["detail"], body


async def test_disabling_the_owner_cuts_keys_clients_and_tokens_and_enabling_restores_them(
    gateway: Gateway,
) -> None:
    vault = Vault(gateway.settings.secret_key)
    dave = await accounts.create_account(CLI, unique("dave"), PASSWORD, role="developer")
    admin = await accounts.create_account(CLI, unique("admin"), PASSWORD, role="admin")
    _, admin_token = await accounts.create_token(Principal(admin["id"], admin["username"], "admin"), "tests")
    working, suspended = await owned_app(vault, dave["id"]), await owned_app(vault, dave["id"])
    await manage.set_consumer_active(suspended.consumer, False)  # suspended before dave is disabled
    _, admins_key, _ = await application()  # made by an admin: no owner

    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http,
        httpx.AsyncClient(
            base_url=f"{gateway.url}/admin/api",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=30,
        ) as admin_api,
    ):

        async def status_is(credential: str, status: int) -> bool:
            return (await stockouts(http, credential)).status_code == status

        async def token_is(app: OwnedApp, status: int) -> bool:
            return (await token(http, app)).status_code == status

        # The key and the client are made one after the other: each is known once a snapshot has it.
        await until(lambda: status_is(working.key, 200), what="dave's new app")
        await until(lambda: token_is(working, 200), what="dave's new OAuth client")

        async def known_suspended() -> (
            bool
        ):  # its key is in a snapshot once refused as suspended, not unknown
            return "is suspended" in (await stockouts(http, suspended.key)).text

        await until(known_suspended, what="dave's suspended app")
        issued = await token(http, working)
        assert issued.status_code == 200, issued.text
        jwt = issued.json()["access_token"]
        assert (await stockouts(http, jwt)).status_code == 200
        refused(await stockouts(http, suspended.key), "is suspended")

        # The admin disables dave, as the admin portal's account page does.
        answer = await admin_api.post(f"/accounts/{dave['id']}/status", json={"status": "disabled"})
        assert answer.status_code == 200 and answer.json()["status"] == "disabled", answer.text

        await until(lambda: status_is(working.key, 401), what="disabling the owner")
        refused(await stockouts(http, working.key), OWNER_DISABLED)
        refused(await stockouts(http, jwt), OWNER_DISABLED)  # a token issued before is refused too
        no_token = await token(http, working)
        assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_client", no_token.text
        assert "access_token" not in no_token.text
        refused(await stockouts(http, suspended.key), "is suspended")
        assert (await stockouts(http, admins_key)).status_code == 200  # no owner: not affected

        answer = await admin_api.post(f"/accounts/{dave['id']}/status", json={"status": "active"})
        assert answer.status_code == 200 and answer.json()["status"] == "active", answer.text

        await until(lambda: status_is(working.key, 200), what="enabling the owner again")
        assert (await stockouts(http, jwt)).status_code == 200
        assert (await token(http, working)).status_code == 200
        # The app suspended before stays suspended: its own state was kept.
        refused(await stockouts(http, suspended.key), "is suspended")
        assert (await token(http, suspended)).status_code == 401
        app = await admin_api.get(f"/consumers/{suspended.consumer}")
        assert app.status_code == 200 and app.json()["active"] is False, app.text


@pytest.fixture
async def engine(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    env = gateway_env(tmp_path_factory.mktemp("owner-store"), DATABASE_URL=module_database_url)
    migrate(env)
    async with bound_store(env) as engine:
        yield engine


async def test_the_snapshot_marks_apps_of_a_disabled_owner_and_the_change_moves_the_version(
    engine: Engine,
) -> None:
    vault = Vault(SECRET_KEY)
    tag = uuid.uuid4().hex[:8]
    admin = await accounts.create_account(CLI, f"admin-{tag}", PASSWORD, role="admin")
    dave = await accounts.create_account(CLI, f"dave-{tag}", secrets.token_urlsafe(12), role="developer")
    mine = await manage.create_consumer(f"mine-{tag}", {}, owner=dave["id"])
    paused = await manage.create_consumer(f"paused-{tag}", {}, owner=dave["id"])
    await manage.set_consumer_active(paused, False)
    nobodys = await manage.create_consumer(f"nobodys-{tag}", {})
    client = await policy_manage.create_oauth_client(vault, mine, ["stockouts:read"])
    acting = Principal(admin["id"], admin["username"], "admin")

    before = await current_version()
    await accounts.set_status(acting, dave["id"], "disabled")
    disabled = await load_snapshot(vault)
    assert disabled.version > before
    apps = {entry.consumer.id: entry.consumer for entry in disabled.oauth_clients.values()}
    assert apps[mine].owner_disabled and apps[mine].active and not apps[mine].usable
    assert disabled.oauth_clients[client.client_id].consumer.id == mine

    for key in (await manage.create_key(paused)).key, (await manage.create_key(nobodys)).key:
        assert key  # keys made while the owner is disabled are in the snapshot, marked as the app is
    again = await load_snapshot(vault)
    consumers = {entry.consumer.id: entry.consumer for entry in again.keys.values()}
    assert consumers[paused].owner_disabled and not consumers[paused].active
    assert not consumers[nobodys].owner_disabled and consumers[nobodys].usable

    await accounts.set_status(acting, dave["id"], "active")
    enabled = await load_snapshot(vault)
    assert enabled.version > again.version
    consumers = {entry.consumer.id: entry.consumer for entry in enabled.keys.values()}
    assert consumers[paused].active is False and not consumers[paused].usable  # still suspended
    assert enabled.oauth_clients[client.client_id].consumer.usable

    # Setting the status it already has changes nothing the nodes serve: the version stays.
    await accounts.set_status(acting, dave["id"], "active")
    assert await current_version() == enabled.version


def row_of(page: str, name: str) -> str:
    """The consumers table's row of the app `name`."""
    match = re.search(rf"<tr>(?:(?!</tr>).)*>{re.escape(name)}</a>(?:(?!</tr>).)*</tr>", page, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


async def test_the_admin_consumer_list_shows_apps_blocked_by_their_disabled_owner(gateway: Gateway) -> None:
    dave = await accounts.create_account(CLI, unique("dave"), PASSWORD, role="developer")
    admin = await accounts.create_account(CLI, unique("admin"), PASSWORD, role="admin", locale="en")
    acting = Principal(admin["id"], admin["username"], "admin")
    blocked = unique("dave-app")
    await manage.create_consumer(blocked, {}, owner=dave["id"])
    await accounts.set_status(acting, dave["id"], "disabled")
    session = await sign_in(gateway.url, PortalAccount(admin["id"], admin["username"], PASSWORD, "admin"))
    try:
        page = (await session.get("/admin/consumers")).text
        assert "blocked: owner disabled" in row_of(page, blocked)
        assert "blocked: owner disabled" not in row_of(page, "test-app")  # no owner
        await accounts.set_status(acting, dave["id"], "active")
        page = (await session.get("/admin/consumers")).text
        assert "blocked: owner disabled" not in row_of(page, blocked)
    finally:
        await session.http.aclose()
