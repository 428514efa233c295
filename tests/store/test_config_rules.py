"""Consumers' rules (limit overrides, IP lists) and APIs' rules (CORS, body cap) in the configuration
document, on SQLite and PostgreSQL: exported, applied to a fresh database, rolled back, previewed, refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from piccolo.engine.base import Engine

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.errors import InvalidParameter
from gateway.store import manage, policy_manage
from gateway.store.crypto import Vault
from portal.services import config
from portal.services.principal import CLI
from tests.conftest import SECRET_KEY, bound_store, gateway_env, migrate
from tests.portal.conftest import unique

VAULT = Vault(SECRET_KEY)
SHOP_RULES = {
    "overrides": {"rate_limits": {"per_minute": 1000}},
    "ip_allow": ["203.0.113.0/24"],
    "ip_deny": ["203.0.113.9/32"],
}


def database(request: pytest.FixtureRequest, tmp: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp / 'unigate.db'}"
    from tests.services import create_database

    return create_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def envs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, str]]]:
    """Two migrated databases on one engine: where a document is exported, and a fresh one to apply it to."""
    made = []
    for _ in range(2):
        tmp = tmp_path_factory.mktemp("config-rules")
        env = gateway_env(tmp, DATABASE_URL=database(request, tmp))
        migrate(env)
        made.append(env)
    yield made


@pytest.fixture(scope="module")
async def engine(envs: list[dict[str, str]]) -> AsyncIterator[Engine]:
    async with bound_store(envs[0]) as engine:
        yield engine


async def shop_app() -> tuple[int, str]:
    """A consumer with every kind of rule, set as `unigate consumer-rules set` sets them."""
    name = unique("shop-app")
    consumer = await manage.create_consumer(name)
    await policy_manage.set_consumer_policy(consumer, **SHOP_RULES)
    return consumer, name


async def exported() -> dict[str, Any]:
    return dict(yaml.safe_load(await config.export_yaml(VAULT)))


async def test_rules_are_exported_and_survive_a_fresh_database(
    engine: Engine, envs: list[dict[str, str]]
) -> None:
    _, name = await shop_app()
    await policy_manage.set_api_policy(
        "stockouts", cors={"allow_origins": ["https://shop.example.com"]}, max_body_bytes=65536
    )
    text = await config.export_yaml(VAULT)
    document = yaml.safe_load(text)
    assert {key: document["consumers"][name][key] for key in SHOP_RULES} == SHOP_RULES
    assert document["apis"]["stockouts"] == {
        "cors": {"allow_origins": ["https://shop.example.com"]},
        "max_body_bytes": 65536,
    }
    assert "orders" not in document["apis"]  # an API without rules is not listed

    async with bound_store(envs[1]):
        applied = await config.apply(CLI, text, {}, VAULT, comment="copied")
        assert ("consumer", name, "create") in {(c.kind, c.name, c.action) for c in applied.changes}
        assert ("api", "stockouts", "create") in {(c.kind, c.name, c.action) for c in applied.changes}
        fresh = await config.export_yaml(VAULT)
        consumer = await manage.consumer_id(name)
        assert (await policy_manage.get_consumer_policy(consumer))["ip_allow"] == ["203.0.113.0/24"]
    assert fresh == text


async def test_a_rollback_restores_the_rules(engine: Engine) -> None:
    consumer, name = await shop_app()
    await policy_manage.set_api_policy("orders", cors={"allow_origins": ["https://shop.example.com"]})
    applied = await config.apply(CLI, await config.export_yaml(VAULT), {}, VAULT, comment="with rules")

    # Changed by hand afterwards: the restriction lifted, CORS turned off.
    await policy_manage.set_consumer_policy(consumer, overrides={}, ip_allow=[], ip_deny=[])
    await policy_manage.set_api_policy("orders", cors={})
    assert (await exported())["consumers"][name]["ip_allow"] == []

    rolled = await config.rollback(CLI, applied.version, {}, VAULT)
    assert ("consumer", name, "update") in {(c.kind, c.name, c.action) for c in rolled.changes}
    assert ("api", "orders", "create") in {(c.kind, c.name, c.action) for c in rolled.changes}
    rules = await policy_manage.get_consumer_policy(consumer)
    assert {key: rules[key] for key in SHOP_RULES} == SHOP_RULES
    orders = {row["api"]: row for row in await policy_manage.list_api_policies()}["orders"]
    assert orders["cors"]["allow_origins"] == ["https://shop.example.com"]
    await policy_manage.set_api_policy("orders", cors={})


async def test_rules_left_out_are_kept_and_rules_written_are_the_whole_of_them(engine: Engine) -> None:
    consumer, name = await shop_app()
    document = await exported()
    # A version saved before rules were exported (or a hand-written file): no rule keys, no `apis`.
    for key in SHOP_RULES:
        del document["consumers"][name][key]
    del document["apis"]
    document["consumers"][name]["description"] = "edited without its rules"
    applied = await config.apply(CLI, yaml.safe_dump(document), {}, VAULT)
    assert [(c.kind, c.action) for c in applied.changes if c.name == name] == [("consumer", "update")]
    rules = await policy_manage.get_consumer_policy(consumer)
    assert {key: rules[key] for key in SHOP_RULES} == SHOP_RULES

    # Written, an empty list clears: the document is the whole of the consumer's rules.
    document["consumers"][name]["ip_allow"] = []
    await config.apply(CLI, yaml.safe_dump(document), {}, VAULT)
    rules = await policy_manage.get_consumer_policy(consumer)
    assert rules["ip_allow"] == [] and rules["ip_deny"] == SHOP_RULES["ip_deny"]


async def test_a_preview_shows_the_rules_it_would_change_and_writes_nothing(engine: Engine) -> None:
    consumer, name = await shop_app()
    document = await exported()
    document["consumers"][name]["ip_allow"] = ["198.51.100.7"]
    document["apis"]["logistics"] = {"max_body_bytes": 4096}
    preview = await config.preview(yaml.safe_dump(document), {}, VAULT)
    assert "-    - 203.0.113.0/24\n+    - 198.51.100.7/32\n" in preview.diff  # as it will be stored
    assert "+  logistics:\n+    max_body_bytes: 4096\n" in preview.diff
    assert {("consumer", name, "update"), ("api", "logistics", "create")} <= {
        (c.kind, c.name, c.action) for c in preview.changes
    }
    assert (await policy_manage.get_consumer_policy(consumer))["ip_allow"] == ["203.0.113.0/24"]
    assert "logistics" not in (await exported())["apis"]


@pytest.mark.parametrize("rules", [{}, {"cors": {"allow_origins": []}}], ids=["empty", "cors-off"])
@pytest.mark.parametrize("stored", [False, True], ids=["none-stored", "stored"])
async def test_an_api_listed_without_rules_is_previewed_as_apply_leaves_it(
    engine: Engine, rules: dict[str, Any], stored: bool
) -> None:
    origins = ["https://shop.example.com"] if stored else []
    await policy_manage.set_api_policy("orders", cors={"allow_origins": origins}, max_body_bytes=None)
    document = await exported()
    document["apis"]["orders"] = rules  # it has no rules: listed so, it is the same as not listed
    text = yaml.safe_dump(document)
    preview = await config.preview(text, {}, VAULT)
    applied = await config.apply(CLI, text, {}, VAULT, base=preview.base)
    assert (preview.diff, preview.changes) == (applied.diff, applied.changes)
    assert [(c.kind, c.name, c.action) for c in applied.changes] == (
        [("api", "orders", "delete")] if stored else []
    )
    assert "orders" not in (await exported())["apis"]


async def test_a_consumer_left_out_is_previewed_as_apply_leaves_it(engine: Engine) -> None:
    consumer, name = await shop_app()
    connection = unique("wdt-gone")
    await manage.put_connection(
        VAULT,
        name=connection,
        system="wangdiantong",
        base_url="http://127.0.0.1:9",
        credentials=dict(wdt_sim.DEFAULT_CREDENTIALS),
    )
    await manage.grant_connections(consumer, [connection])
    document = await exported()
    del document["consumers"][name]  # suspended, its keys and rules kept
    del document["connections"][connection]  # deleted: it leaves the consumer's grants
    text = yaml.safe_dump(document)
    preview = await config.preview(text, {}, VAULT)
    applied = await config.apply(CLI, text, {}, VAULT, base=preview.base)
    assert preview.diff == applied.diff
    assert "-    active: true\n" in preview.diff and "+    active: false\n" in preview.diff
    assert f"-    - {connection}\n" in preview.diff
    assert "203.0.113.0/24" not in preview.diff  # nothing says its IP restriction is lifted: it is not
    assert ("consumer", name, "suspend") in {(c.kind, c.name, c.action) for c in preview.changes}
    rules = await policy_manage.get_consumer_policy(consumer)
    assert {key: rules[key] for key in SHOP_RULES} == SHOP_RULES


async def cli_detail(consumer: int, **rules: Any) -> str:
    """What `unigate consumer-rules set` / `apis set` answers for the same bad value."""
    with pytest.raises(InvalidParameter) as refused:
        if "api" in rules:
            await policy_manage.set_api_policy(**rules)
        else:
            await policy_manage.set_consumer_policy(consumer, **rules)
    return refused.value.detail


@pytest.mark.parametrize(
    ("part", "value", "field"),
    [
        ("ip_allow", ["10.0.0.0/8", "10.0.0.256"], "ip_allow[1]"),
        ("ip_deny", ["not an address"], "ip_deny[0]"),
        ("overrides", {"apis": ["orders"]}, "overrides.apis"),
        ("overrides", {"rate_limits": {"per_minute": 0}}, "overrides.rate_limits.per_minute"),
    ],
)
async def test_a_bad_consumer_rule_is_refused_naming_its_place_and_nothing_is_applied(
    engine: Engine, part: str, value: Any, field: str
) -> None:
    consumer, name = await shop_app()
    document = await exported()
    before = await config.export_yaml(VAULT)
    document["consumers"][name][part] = value
    document["consumers"][name]["description"] = "not applied either"
    with pytest.raises(InvalidParameter) as refused:
        await config.apply(CLI, yaml.safe_dump(document), {}, VAULT)
    assert refused.value.field == f"consumers.{name}.{field}"
    assert refused.value.detail == f"consumers.{name}." + await cli_detail(consumer, **{part: value})
    assert await config.export_yaml(VAULT) == before


@pytest.mark.parametrize(
    ("api", "rules", "field"),
    [
        ("orders", {"cors": {"allow_origins": ["shop.example.com"]}}, "apis.orders.cors.allow_origins[0]"),
        ("orders", {"cors": {"max_age": -1}}, "apis.orders.cors.max_age"),
        ("orders", {"max_body_bytes": 0}, "apis.orders.max_body_bytes"),
        ("invoices", {}, "apis.invoices"),
    ],
)
async def test_a_bad_api_rule_is_refused_naming_its_place_and_nothing_is_applied(
    engine: Engine, api: str, rules: dict[str, Any], field: str
) -> None:
    document = await exported()
    before = await config.export_yaml(VAULT)
    document["apis"][api] = rules
    with pytest.raises(InvalidParameter) as refused:
        await config.apply(CLI, yaml.safe_dump(document), {}, VAULT)
    assert refused.value.field == field
    assert refused.value.detail.endswith(await cli_detail(0, api=api, **rules))
    assert await config.export_yaml(VAULT) == before


async def test_every_bad_rule_of_a_document_is_listed(engine: Engine) -> None:
    _, name = await shop_app()
    document = await exported()
    document["consumers"][name]["ip_allow"] = ["nowhere"]
    document["consumers"][name]["ip_deny"] = ["10.0.0.0/33"]
    document["apis"]["orders"] = {"max_body_bytes": -5}
    with pytest.raises(InvalidParameter) as refused:
        await config.apply(CLI, yaml.safe_dump(document), {}, VAULT)
    assert [problem["field"] for problem in refused.value.extra["problems"]] == [
        f"consumers.{name}.ip_allow[0]",
        f"consumers.{name}.ip_deny[0]",
        "apis.orders.max_body_bytes",
    ]
