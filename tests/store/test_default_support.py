"""An app's default connection must serve its API, as the connection's system says (its connector): a
kuaidi100 connection as the stockouts default would fail every call 501. Refused in the store on both
engines and by the CLI, naming the field
(tests/portal/test_app_default_support.py: a developer's app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.errors import InvalidParameter
from gateway.store import manage
from gateway.store.crypto import Vault
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate, unigate
from tests.portal.conftest import unique


async def test_a_default_its_system_cannot_serve_is_refused(database_url: str, tmp_path: Path) -> None:
    env = gateway_env(tmp_path, DATABASE_URL=database_url)
    migrate(env)
    vault = Vault(SECRET_KEY)
    async with bound_store(env):
        for name, system, credentials in (
            ("erp", "wangdiantong", wdt_sim.DEFAULT_CREDENTIALS),
            ("express", "kuaidi100", kd100_sim.DEFAULT_CREDENTIALS),
        ):
            await manage.put_connection(
                vault, name=name, system=system, base_url="http://127.0.0.1:9", credentials=dict(credentials)
            )
        for resource, name, serving in (
            ("stockouts", "express", "wangdiantong"),
            ("orders", "express", "wangdiantong"),
            ("logistics", "erp", "kuaidi100"),
        ):
            with pytest.raises(InvalidParameter) as refused:
                await manage.create_consumer(unique("app"), {resource: name}, by_admin=True)
            assert refused.value.field == f"default_connections.{resource}"
            assert f"{resource} (served by {serving})" in refused.value.detail
        assert not await manage.list_consumers()  # nothing half made

        # Each API to a connection that serves it; `*` stands in for those without their own default, and
        # may name a connection serving some of them only (the rest are called through X-Connection).
        fine = {"stockouts": "erp", "orders": "erp", "logistics": "express"}
        assert await manage.create_consumer("whole", fine, by_admin=True)
        assert await manage.create_consumer("express-first", {"*": "express"}, by_admin=True)
        assert await manage.create_consumer("erp-rest", {"logistics": "express", "*": "erp"}, by_admin=True)
        # A `*` left only with APIs its connection cannot serve answers for nothing it can do.
        with pytest.raises(InvalidParameter) as refused:
            await manage.create_consumer("nothing", {"logistics": "express", "*": "express"}, by_admin=True)
        assert refused.value.field == "default_connections.*"
        assert "stockouts (served by wangdiantong)" in refused.value.detail


def test_the_cli_refuses_a_default_that_cannot_serve_its_api(tmp_path: Path) -> None:
    env = gateway_env(tmp_path)
    migrate(env)
    unigate(env, "connections", "add", "kd100-demo", "--system", "kuaidi100", "--base-url", "http://127.0.0.1:9",
            "--credential", "customer=c", "--credential", "key=k")  # fmt: skip
    refused = unigate(env, "consumers", "create", "zz", "--default", "stockouts=kd100-demo", check=False)
    assert refused.returncode != 0
    assert "default_connections.stockouts" in refused.stderr and "wangdiantong" in refused.stderr


def test_config_apply_refuses_a_default_that_cannot_serve_its_api(tmp_path: Path) -> None:
    env = gateway_env(tmp_path)
    migrate(env)
    document = tmp_path / "config.yaml"
    document.write_text(
        "format: 1\n"
        "connections:\n"
        "  express: {system: kuaidi100, base_url: 'http://127.0.0.1:9', credentials: {customer: c, key: k}}\n"
        "consumers:\n"
        "  shop: {default_connections: {stockouts: express}}\n"
    )
    refused = unigate(env, "config", "apply", str(document), check=False)
    assert refused.returncode != 0
    assert "consumers.shop.default_connections.stockouts" in refused.stderr, refused.stderr
    assert "stockouts (served by wangdiantong)" in refused.stderr
    assert "express" not in unigate(env, "connections", "list").stdout  # nothing applied
