"""Consumers' and APIs' rules in `unigate config export|apply` as an operator runs them, and an applied
IP allow list enforced by a real gateway process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from portal.services import config
from portal.services.principal import CLI
from tests.conftest import Gateway, gateway_env, unigate
from tests.policies.p1_support import application, until


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = gateway_env(tmp_path_factory.mktemp("config-rules-cli"))
    unigate(env, "migrate")
    return env


def test_rules_set_by_the_cli_go_through_export_and_apply(env: dict[str, str], tmp_path: Path) -> None:
    unigate(env, "consumers", "create", "shop-app")
    unigate(
        env, "consumer-rules", "set", "shop-app",
        "--override", "rate_limits.per_minute=1000", "--allow-ip", "203.0.113.0/24",
    )  # fmt: skip
    unigate(env, "apis", "set", "stockouts", "--cors-origin", "https://shop.example.com")
    document = yaml.safe_load(unigate(env, "config", "export").stdout)
    shop = document["consumers"]["shop-app"]
    assert shop["overrides"] == {"rate_limits": {"per_minute": 1000}}
    assert (shop["ip_allow"], shop["ip_deny"]) == (["203.0.113.0/24"], [])
    assert document["apis"] == {"stockouts": {"cors": {"allow_origins": ["https://shop.example.com"]}}}

    shop["ip_allow"].append("198.51.100.0/24")
    path = tmp_path / "unigate.yaml"
    path.write_text(yaml.safe_dump(document))
    dry = unigate(env, "config", "apply", "--dry-run", str(path))
    assert "+    - 198.51.100.0/24" in dry.stdout
    assert "198.51.100.0/24" not in unigate(env, "consumer-rules", "show", "shop-app").stdout
    unigate(env, "config", "apply", str(path))
    assert "198.51.100.0/24" in unigate(env, "consumer-rules", "show", "shop-app").stdout

    shop["ip_allow"] = ["203.0.113.300"]
    refused = unigate(env, "config", "apply", "-", stdin=yaml.safe_dump(document), check=False)
    assert refused.returncode == 2
    assert "'203.0.113.300' is not an IP address" in refused.stderr
    assert "(field: consumers.shop-app.ip_allow[0])" in refused.stderr
    assert "198.51.100.0/24" in unigate(env, "consumer-rules", "show", "shop-app").stdout


async def test_an_applied_ip_allow_list_is_enforced_by_the_gateway(gateway: Gateway) -> None:
    consumer, key, _ = await application(apis=("stockouts",))
    vault = Vault(gateway.settings.secret_key)
    name = next(row["name"] for row in await manage.list_consumers() if row["id"] == consumer)
    document = yaml.safe_load(await config.export_yaml(vault))
    document["consumers"][name]["ip_allow"] = ["198.51.100.0/24"]
    applied = await config.apply(CLI, yaml.safe_dump(document), {}, vault, comment="restrict")
    async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:

        async def answers(status: int) -> bool:
            return (await http.get("/v1/stockouts", params={"limit": 1})).status_code == status

        await until(lambda: answers(403), what="the applied allow list")
        refused = await http.get("/v1/stockouts", params={"limit": 1})
        assert refused.json()["code"] == "ip_forbidden"
        await config.rollback(CLI, applied.version - 1, {}, vault)
        await until(lambda: answers(200), what="the rollback")
    assert (await policy_manage.get_consumer_policy(consumer))["ip_allow"] == []
