"""The management REST API, resource by resource, over real HTTP with an admin token: what it returns,
the problem+json (naming the field) it answers bad input with, and that secrets never come back."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import pytest

from gateway.connectors.kuaidi100 import simulator as kd100_sim
from gateway.connectors.wangdiantong import simulator as wdt_sim
from tests.conftest import TEST_PLAN, Gateway, Simulators
from tests.portal.conftest import Session, unique


def problem(answer: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] == code
    if field is not None:
        assert body["field"] == field, body
    return body  # type: ignore[no-any-return]


async def eventually_status(
    gateway: Gateway, key: str, status: int, path: str = "/v1/stockouts?limit=1"
) -> None:
    """Config changes reach the gateway's snapshot within its poll interval (0.2 s here)."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for _ in range(100):
            answer = await http.get(path, headers={"Authorization": f"Bearer {key}"})
            if answer.status_code == status:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}; last: {answer.status_code} {answer.text}")


async def test_accounts_are_created_validated_disabled_and_reset(admin_api: httpx.AsyncClient) -> None:
    name = unique("acct")
    created = await admin_api.post(
        "/accounts", json={"username": name, "password": "long enough pw", "role": "developer"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active" and "password_hash" not in created.json()
    problem(
        await admin_api.post("/accounts", json={"username": name, "password": "long enough pw"}),
        409,
        "conflict",
        "username",
    )
    problem(
        await admin_api.post("/accounts", json={"username": unique("a"), "password": "short"}),
        400,
        "invalid_parameter",
        "password",
    )
    problem(
        await admin_api.post(
            "/accounts", json={"username": unique("a"), "password": "long enough pw", "role": "root"}
        ),
        400,
        "invalid_parameter",
        "role",
    )
    problem(
        await admin_api.post("/accounts", json={"password": "long enough pw"}),
        400,
        "invalid_parameter",
        "username",
    )
    account_id = created.json()["id"]
    disabled = await admin_api.post(f"/accounts/{account_id}/status", json={"status": "disabled"})
    assert disabled.json()["status"] == "disabled"
    problem(
        await admin_api.post(f"/accounts/{account_id}/status", json={"status": "gone"}),
        400,
        "invalid_parameter",
        "status",
    )
    reset = await admin_api.post(f"/accounts/{account_id}/reset-password", json={})
    assert len(reset.json()["password"]) >= 10
    listed = await admin_api.get("/accounts", params={"status": "disabled"})
    assert name in {row["username"] for row in listed.json()}


async def test_admin_tokens_are_shown_once_and_stop_working_when_revoked(
    admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    issued = (await admin_api.post("/tokens", json={"name": "ci"})).json()
    assert issued["token"].startswith("uga_") and issued["token"].startswith(issued["prefix"])
    listed = (await admin_api.get("/tokens")).json()
    assert all("token" not in row and "token_hash" not in row for row in listed)
    async with httpx.AsyncClient(base_url=f"{gateway.url}/admin/api", timeout=30) as http:
        headers = {"Authorization": f"Bearer {issued['token']}"}
        assert (await http.get("/tokens", headers=headers)).status_code == 200
        await admin_api.delete(f"/tokens/{issued['id']}")
        problem(await http.get("/tokens", headers=headers), 401, "unauthorized")


async def test_connections_keep_credentials_write_only_and_encrypted(
    admin_api: httpx.AsyncClient, gateway: Gateway, simulators: Simulators
) -> None:
    name = unique("wdt")
    secret = wdt_sim.DEFAULT_CREDENTIALS["appsecret"]
    body = {
        "system": "wangdiantong",
        "base_url": simulators.wdt.url,
        "credentials": dict(wdt_sim.DEFAULT_CREDENTIALS),
    }
    saved = await admin_api.put(f"/connections/{name}", json={**body, "options": {"qps": 5}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["credential_fields"] == ["appkey", "appsecret", "sid"]
    assert secret not in saved.text and secret not in (await admin_api.get(f"/connections/{name}")).text
    with sqlite3.connect(gateway.settings.sqlite_path) as db:
        stored = db.execute("select credentials from unigate_connection where name = ?", (name,)).fetchone()[
            0
        ]
    assert secret not in stored
    # Empty credentials keep what is stored: the form never has to show a secret again.
    moved = await admin_api.put(f"/connections/{name}", json={**body, "credentials": {"appsecret": ""}})
    assert moved.json()["credential_fields"] == ["appkey", "appsecret", "sid"]
    tested = await admin_api.post(f"/connections/{name}/test")
    assert tested.json()["ok"] is True and tested.json()["vendor"]["code"] == 0
    # ...but not to another host: pointed elsewhere, the gateway would send that host the stored secrets.
    elsewhere = simulators.wdt.url.replace("127.0.0.1", "localhost")
    problem(
        await admin_api.put(f"/connections/{name}", json={**body, "base_url": elsewhere, "credentials": {}}),
        400,
        "invalid_parameter",
        "credentials.appkey",
    )
    assert (await admin_api.get(f"/connections/{name}")).json()["base_url"] == simulators.wdt.url
    # Another path on the same host keeps them; given again, they may go to the new host.
    same_host = await admin_api.put(
        f"/connections/{name}", json={**body, "base_url": simulators.wdt.url + "/"}
    )
    assert same_host.status_code == 200, same_host.text
    assert (
        await admin_api.put(f"/connections/{name}", json={**body, "base_url": elsewhere})
    ).status_code == 200
    # A port that is no port is the URL's fault, not a 500 (nor a move needing credentials).
    for port in ("abc", "99999"):
        bad_port = await admin_api.put(
            f"/connections/{name}", json={**body, "base_url": f"http://127.0.0.1:{port}", "credentials": {}}
        )
        problem(bad_port, 400, "invalid_parameter", "base_url")
    # A user or password in the URL would be shown in lists and the audit log: refused.
    userinfo = simulators.wdt.url.replace("http://", "http://admin:pw@")
    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={**body, "base_url": userinfo}),
        400,
        "invalid_parameter",
        "base_url",
    )

    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={**body, "system": "sap"}),
        400,
        "invalid_parameter",
        "system",
    )
    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={**body, "base_url": "ftp://x"}),
        400,
        "invalid_parameter",
        "base_url",
    )
    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={**body, "credentials": {"sid": "s"}}),
        400,
        "invalid_parameter",
        "credentials.appkey",
    )
    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={**body, "options": {"qps": "fast"}}),
        400,
        "invalid_parameter",
        "options.qps",
    )
    problem(
        await admin_api.put(f"/connections/{unique('x')}", json={"base_url": "http://x"}),
        400,
        "invalid_parameter",
        "system",
    )
    assert (await admin_api.delete(f"/connections/{name}")).status_code == 204
    problem(await admin_api.get(f"/connections/{name}"), 404, "not_found")


async def test_testing_a_connection_shows_the_vendors_refusal(admin_api: httpx.AsyncClient) -> None:
    refused = (await admin_api.post("/connections/wdt-badsign/test")).json()
    assert refused["ok"] is False
    assert (
        refused["error"]["code"] == "vendor_error" and refused["error"]["vendor"]["system"] == "wangdiantong"
    )
    kd = (await admin_api.post("/connections/kd100-demo/test")).json()
    assert kd["ok"] is True
    assert kd100_sim.DEFAULT_CREDENTIALS["key"] not in str(kd)
    problem(await admin_api.post("/connections/nothing-here/test"), 404, "not_found")


async def test_published_apis_and_systems(admin_api: httpx.AsyncClient) -> None:
    systems = {row["system"]: row["credentials"] for row in (await admin_api.get("/systems")).json()}
    assert systems["kuaidi100"] == ["customer", "key"]
    published = {row["name"]: row for row in (await admin_api.get("/apis")).json()}
    scopes = {op["scope"] for op in published["wdt-demo"]["operations"]}
    assert scopes == {"stockouts:read", "orders:read", "orders:write"}
    assert [op["api"] for op in published["kd100-demo"]["operations"]] == ["logistics"]


async def test_consumers_keys_and_revocation(admin_api: httpx.AsyncClient, gateway: Gateway) -> None:
    name = unique("shop")
    created = await admin_api.post(
        "/consumers", json={"name": name, "default_connections": {"stockouts": "wdt-demo"}}
    )
    assert created.status_code == 201, created.text
    consumer = created.json()["id"]
    problem(await admin_api.post("/consumers", json={"name": name}), 409, "conflict", "name")
    problem(await admin_api.post("/consumers", json={"name": "Bad Name"}), 400, "invalid_parameter", "name")
    problem(
        await admin_api.post(
            "/consumers", json={"name": unique("c"), "default_connections": {"stockouts": "nope"}}
        ),
        400,
        "invalid_parameter",
        "default_connections.stockouts",
    )
    problem(
        await admin_api.post("/consumers", json={"name": unique("c"), "owner": "nobody-here"}),
        400,
        "invalid_parameter",
        "owner",
    )
    subscribed = await admin_api.post(
        "/subscriptions", json={"consumer": consumer, "api": "stockouts", "plan": TEST_PLAN}
    )
    assert subscribed.json()["status"] == "active"
    issued = (await admin_api.post(f"/consumers/{consumer}/keys", json={"name": "ops"})).json()
    await eventually_status(gateway, issued["key"], 200)

    found = (await admin_api.get("/keys", params={"prefix": issued["key"][:9]})).json()
    assert [row["id"] for row in found] == [issued["id"]]
    assert "key" not in found[0] and "key_hash" not in found[0]
    problem(await admin_api.get("/keys", params={"prefix": "ug_"}), 400, "invalid_parameter", "prefix")

    suspended = await admin_api.patch(f"/consumers/{consumer}", json={"active": False})
    assert suspended.json()["active"] is False
    await eventually_status(gateway, issued["key"], 401)
    await admin_api.patch(f"/consumers/{consumer}", json={"active": True})
    await eventually_status(gateway, issued["key"], 200)

    revoked = (await admin_api.post(f"/keys/{issued['id']}/revoke")).json()
    assert revoked["state"] == "revoked"
    await eventually_status(gateway, issued["key"], 401)
    problem(await admin_api.post("/keys/999999/revoke"), 404, "not_found")


async def test_plans_subscriptions_and_the_approval_queue(
    admin_api: httpx.AsyncClient, gateway: Gateway
) -> None:
    plan = unique("gold")
    created = await admin_api.post(
        f"/plans/{plan}",
        json={
            "config": {"rate_limits": {"per_minute": 600}, "apis": ["stockouts"]},
            "requires_approval": True,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["config"]["rate_limits"]["per_minute"] == 600
    problem(
        await admin_api.post(f"/plans/{unique('p')}", json={"config": {"rate_limits": {"per_minute": 0}}}),
        400,
        "invalid_parameter",
        "config.rate_limits.per_minute",
    )
    problem(
        await admin_api.post(f"/plans/{unique('p')}", json={"config": {"apis": ["payroll"]}}),
        400,
        "invalid_parameter",
        "config.apis[0]",
    )
    problem(await admin_api.post(f"/plans/{plan}", json={}), 409, "conflict", "name")

    consumer = (
        await admin_api.post(
            "/consumers", json={"name": unique("c"), "default_connections": {"stockouts": "wdt-demo"}}
        )
    ).json()
    problem(
        await admin_api.post(
            "/subscriptions", json={"consumer": consumer["id"], "api": "orders", "plan": plan}
        ),
        400,
        "invalid_parameter",
        "plan",
    )
    sub = (
        await admin_api.post(
            "/subscriptions", json={"consumer": consumer["id"], "api": "stockouts", "plan": plan}
        )
    ).json()
    assert sub["status"] == "pending"
    key = (await admin_api.post(f"/consumers/{consumer['id']}/keys", json={})).json()["key"]
    await eventually_status(gateway, key, 403)  # not_subscribed: the subscription waits for approval
    queue = (await admin_api.get("/subscriptions", params={"status": "pending"})).json()
    assert sub["id"] in {row["id"] for row in queue}
    approved = await admin_api.patch(f"/subscriptions/{sub['id']}", json={"status": "active"})
    assert approved.json()["status"] == "active"
    await eventually_status(gateway, key, 200)
    problem(await admin_api.patch(f"/subscriptions/{sub['id']}", json={}), 400, "invalid_parameter", "status")
    problem(await admin_api.delete(f"/plans/{plan}"), 409, "conflict", "name")
    changed = await admin_api.patch(f"/plans/{plan}", json={"description": "for partners"})
    assert changed.json()["description"] == "for partners"


async def test_consumer_overrides_are_validated(admin_api: httpx.AsyncClient) -> None:
    consumer = (await admin_api.post("/consumers", json={"name": unique("c")})).json()["id"]
    saved = await admin_api.put(
        f"/consumers/{consumer}/policy",
        json={"overrides": {"quotas": {"per_day": 5}}, "ip_allow": ["10.0.0.0/8"]},
    )
    assert saved.json()["overrides"] == {"quotas": {"per_day": 5}} and saved.json()["ip_allow"] == [
        "10.0.0.0/8"
    ]
    problem(
        await admin_api.put(f"/consumers/{consumer}/policy", json={"ip_deny": ["not-a-network"]}),
        400,
        "invalid_parameter",
        "ip_deny[0]",
    )
    assert (await admin_api.get(f"/consumers/{consumer}/policy")).json()["overrides"] == {
        "quotas": {"per_day": 5}
    }


async def test_the_audit_log_records_who_what_before_after_without_secrets(
    admin_api: httpx.AsyncClient, simulators: Simulators
) -> None:
    name = unique("kd")
    secret_key = "a-very-secret-kd100-key"
    await admin_api.put(
        f"/connections/{name}",
        json={
            "system": "kuaidi100",
            "base_url": simulators.kd100.url,
            "credentials": {"customer": "C1", "key": secret_key},
        },
    )
    await admin_api.put(
        f"/connections/{name}", json={"system": "kuaidi100", "base_url": simulators.kd100.url + "/"}
    )
    events = (await admin_api.get("/audit", params={"action": "connection."})).json()
    mine = [event for event in events if event["target"] == name]
    assert [event["action"] for event in mine] == ["connection.update", "connection.create"]
    update = mine[0]
    assert update["actor"].startswith("admin-") and update["at"]
    assert update["before"]["credentials"] == {"customer": "***", "key": "***"}
    assert update["after"]["credentials_changed"] == []
    assert secret_key not in str(events) and "C1" not in str(mine)


async def test_configuration_export_preview_apply_and_rollback(admin_api: httpx.AsyncClient) -> None:
    exported = (await admin_api.get("/config")).json()["document"]
    assert "${UNIGATE_CONN_WDT_DEMO_APPSECRET}" in exported
    assert wdt_sim.DEFAULT_CREDENTIALS["appsecret"] not in exported
    name = unique("cfg")
    document = exported.replace("consumers:\n", f"consumers:\n  {name}:\n    description: from yaml\n", 1)
    preview = (await admin_api.post("/config/preview", json={"document": document})).json()
    assert {"kind": "consumer", "name": name, "action": "create"} in preview["changes"]
    assert f"+  {name}:" in preview["diff"]
    assert name not in {
        row["name"] for row in (await admin_api.get("/consumers")).json()
    }  # a preview writes nothing

    applied = (
        await admin_api.post("/config/apply", json={"document": document, "comment": "add one"})
    ).json()
    consumers = {row["name"]: row for row in (await admin_api.get("/consumers")).json()}
    assert consumers[name]["description"] == "from yaml"
    versions = (await admin_api.get("/config/versions")).json()
    assert versions[0]["id"] == applied["version"] and versions[0]["comment"] == "add one"

    rolled = (await admin_api.post(f"/config/versions/{applied['version'] - 1}/rollback")).json()
    assert "changes" in rolled, rolled
    assert {"kind": "consumer", "name": name, "action": "suspend"} in rolled["changes"]
    assert {row["name"]: row for row in (await admin_api.get("/consumers")).json()}[name]["active"] is False


async def test_plans_and_subscriptions_are_part_of_the_configuration(admin_api: httpx.AsyncClient) -> None:
    import yaml

    document = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    plan, consumer = unique("yplan"), unique("ycons")
    document["plans"][plan] = {
        "config": {"quotas": {"per_day": 50}, "apis": ["orders"]},
        "requires_approval": True,
    }
    document["consumers"][consumer] = {"subscriptions": {"orders": {"plan": plan, "status": "pending"}}}
    applied = await admin_api.post("/config/apply", json={"document": yaml.safe_dump(document)})
    assert applied.status_code == 201, applied.text
    assert {"kind": "plan", "name": plan, "action": "create"} in applied.json()["changes"]
    queue = (await admin_api.get("/subscriptions", params={"status": "pending"})).json()
    assert (consumer, "orders", plan) in {(row["consumer_name"], row["api"], row["plan"]) for row in queue}
    exported = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    assert exported["plans"][plan]["config"]["quotas"]["per_day"] == 50
    assert exported["consumers"][consumer]["subscriptions"] == {"orders": {"plan": plan, "status": "pending"}}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("connections: [", "document"),
        (
            "connections:\n  wdt-demo:\n    system: wangdiantong\n    base_url: 5\n",
            "connections.wdt-demo.base_url",
        ),
        ("connections:\n  x1:\n    base_url: http://x\n", "connections.x1.system"),
        (
            "connections:\n  x1:\n    system: kuaidi100\n    base_url: http://x\n"
            "    credentials: {key: plain}\n",
            "connections.x1.credentials.key",
        ),
        (
            "connections:\n  x1:\n    system: kuaidi100\n    base_url: http://x\n"
            "    credentials: {key: '${UNIGATE_CONN_TEST_UNSET_VARIABLE}'}\n",
            "connections.x1.credentials.key",
        ),
        # Only variables made for credentials: the gateway's own secrets would go to the backend otherwise.
        (
            "connections:\n  x1:\n    system: kuaidi100\n    base_url: http://x\n"
            "    credentials: {key: '${UNIGATE_SECRET_KEY}'}\n",
            "connections.x1.credentials.key",
        ),
        (
            "connections:\n  x1:\n    system: kuaidi100\n    base_url: http://x\n"
            "    credentials: {key: '${HOME}'}\n",
            "connections.x1.credentials.key",
        ),
        (
            "consumers:\n  c1:\n    default_connections: {stockouts: nowhere}\n",
            "consumers.c1.default_connections.stockouts",
        ),
        ("consumers:\n  c1:\n    owner: nobody-at-all\n", "consumers.c1.owner"),
        ("plans_and_more: {}\n", "plans_and_more"),
        (
            "plans:\n  p1:\n    config: {rate_limits: {per_minute: 0}}\n",
            "plans.p1.config.rate_limits.per_minute",
        ),
        (
            "plans:\n  p1:\n    config: {apis: [orders]}\n"
            "consumers:\n  c1:\n    subscriptions: {stockouts: {plan: p1}}\n",
            "consumers.c1.subscriptions.stockouts.plan",
        ),
        (
            "consumers:\n  c1:\n    subscriptions: {stockouts: {plan: nowhere}}\n",
            "consumers.c1.subscriptions.stockouts.plan",
        ),
    ],
)
async def test_a_bad_configuration_is_refused_whole_naming_the_field(
    admin_api: httpx.AsyncClient, document: str, field: str
) -> None:
    before = (await admin_api.get("/config")).json()["document"]
    problem(
        await admin_api.post("/config/apply", json={"document": document}), 400, "invalid_parameter", field
    )
    assert (await admin_api.get("/config")).json()["document"] == before


async def test_analytics_count_calls_errors_and_rejections(
    admin_api: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    before = (await admin_api.get("/analytics", params={"days": 1})).json()["totals"]["calls"]
    assert (await client.get("/v1/stockouts", params={"limit": 1})).status_code == 200
    assert (await client.get("/v1/stockouts", params={"limit": 1000})).status_code == 400
    for _ in range(100):  # metering writes in batches off the hot path
        overview = (await admin_api.get("/analytics", params={"days": 1})).json()
        if overview["totals"]["calls"] >= before + 2:
            break
        await asyncio.sleep(0.1)
    assert overview["totals"]["calls"] >= before + 2 and overview["totals"]["errors"] >= 1
    assert "test-app" in {row["name"] for row in overview["top_consumers"]}
    assert overview["totals"]["p95_ms"] is not None
    assert isinstance(overview["breakers"], dict)


async def test_an_admin_session_works_for_the_api_with_csrf(admin_session: Session) -> None:
    await admin_session.get("/admin")
    listed = await admin_session.call("GET", "/admin/api/plans")
    assert listed.status_code == 200
    created = await admin_session.call("POST", f"/admin/api/plans/{unique('s')}", json={"config": {}})
    assert created.status_code == 201
    forged = await admin_session.http.post(f"/admin/api/plans/{unique('s')}", json={"config": {}})
    assert forged.status_code == 403  # a cookie alone, as another site's form would send it


async def test_a_document_moving_a_connection_to_another_host_must_give_its_credentials(
    admin_api: httpx.AsyncClient,
) -> None:
    """Applied without the variables set, a document keeps the stored credentials, but only where they were
    given: pointed at another host, the gateway would send that host the secrets."""
    import yaml

    document = yaml.safe_load((await admin_api.get("/config")).json()["document"])
    connection = document["connections"]["wdt-target"]
    connection["base_url"] = connection["base_url"].replace("127.0.0.1", "localhost")
    before = (await admin_api.get("/connections/wdt-target")).json()["base_url"]
    refused = await admin_api.post("/config/apply", json={"document": yaml.safe_dump(document)})
    problem(refused, 400, "invalid_parameter", "connections.wdt-target.credentials.appkey")
    assert "another host" in refused.json()["detail"]
    assert (await admin_api.get("/connections/wdt-target")).json()["base_url"] == before
