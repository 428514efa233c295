"""What an admin meets on the portal's pages, over real HTTP: a configuration download `unigate config
apply` takes, vendors' Chinese shown as Chinese, no English left in the Chinese pages, a question before
what cannot be undone, a word after a save, and an apply that reloading does not repeat."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.connectors.wangdiantong import simulator as wdt_sim
from gateway.settings import Settings
from tests.conftest import Gateway, unigate
from tests.portal.conftest import Session, unique


def export_href(html: str) -> str:
    match = re.search(r'<a href="([^"]+)"[^>]*data-testid="export"', html)
    assert match, "the configuration page links no download"
    return match.group(1).replace("&amp;", "&")


def comment_value(html: str) -> str | None:
    match = re.search(r'<input id="f-comment"[^>]*value="([^"]*)"', html)
    return match.group(1) if match else None


async def test_the_configuration_download_is_yaml_that_applies_with_no_changes(
    admin_session: Session, store: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    page = await admin_session.get("/admin/config")
    download = await admin_session.get(export_href(page.text))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/yaml")
    assert re.match(r'attachment; filename="unigate\.yaml"', download.headers["content-disposition"])
    assert isinstance(yaml.safe_load(download.text)["connections"], dict)

    path = tmp_path / "unigate.yaml"
    path.write_bytes(download.content)
    dry = unigate(store[1], "config", "apply", "--dry-run", str(path))
    assert dry.stdout == "no changes\n"


async def test_an_apply_redirects_so_a_reload_makes_no_second_version(admin_session: Session) -> None:
    await admin_session.get("/admin/config")
    document = yaml.safe_load((await admin_session.get("/admin/config/export")).text)
    plan = unique("polish")
    document.setdefault("plans", {})[plan] = {"description": "金牌", "config": {"priority": "high"}}
    text = yaml.safe_dump(document, allow_unicode=True)

    preview = await admin_session.form("/admin/config", {"document": text, "action": "preview"})
    assert preview.status_code == 200, preview.text
    base = re.search(r'name="base" value="([^"]+)"', preview.text)
    assert base and plan in preview.text

    applied = await admin_session.form(
        "/admin/config", {"document": text, "action": "apply", "base": base.group(1), "comment": "gold"}
    )
    assert applied.status_code == 303
    location = re.fullmatch(r"/admin/config\?applied=(\d+)&changes=1", applied.headers["location"])
    assert location
    version = int(location.group(1))
    shown = await admin_session.get(applied.headers["location"])
    assert f"已应用为版本 {version}。" in shown.text and "共 1 项变更。" in shown.text
    # Reloading the page after an apply is a GET: it shows the same notice and makes no version.
    again = await admin_session.get(applied.headers["location"])
    assert f"/admin/config?version={version + 1}" not in again.text

    # The stored version downloads as its own file.
    viewed = await admin_session.get(f"/admin/config?version={version}")
    stored = await admin_session.get(export_href(viewed.text))
    assert f'filename="unigate-v{version}.yaml"' in stored.headers["content-disposition"]
    assert yaml.safe_load(stored.text)["plans"][plan]["description"] == "金牌"

    rolled = await admin_session.form(f"/admin/config/versions/{version}/rollback")
    assert rolled.status_code == 303
    assert re.fullmatch(rf"/admin/config\?applied={version + 1}&changes=0", rolled.headers["location"])


async def test_a_refused_apply_keeps_the_comment_and_names_the_field_once(admin_session: Session) -> None:
    await admin_session.get("/admin/config")
    document = yaml.safe_load((await admin_session.get("/admin/config/export")).text)
    plan = unique("bad")
    document.setdefault("plans", {})[plan] = {"config": {"rate_limits": {"per_minute": -5}}}
    refused = await admin_session.form(
        "/admin/config",
        {"document": yaml.safe_dump(document), "action": "apply", "comment": "raise the limit"},
    )
    assert refused.status_code == 400, refused.text
    assert comment_value(refused.text) == "raise the limit"
    (banner,) = re.findall(r'<p class="err banner" role="alert">(.*?)</p>', refused.text)
    path = f"plans.{plan}.config.rate_limits.per_minute"
    assert path in banner and banner.count(path) == 1, banner


async def test_vendor_chinese_is_shown_as_chinese_and_json_stays_safe(admin_session: Session) -> None:
    await admin_session.get("/admin/connections")
    tested = await admin_session.form("/admin/connections/wdt-badsign/test")
    assert tested.status_code == 200
    assert wdt_sim.SIGN_ERROR_MESSAGE in tested.text
    assert "\\u" not in tested.text

    # The audit log shows what was saved in Chinese; markup in it stays text, not HTML.
    plan = unique("cn")
    await admin_session.get("/admin/plans")
    made = await admin_session.form(
        "/admin/plans", {"name": plan, "description": "金牌套餐 </script><b>", "apis": ["orders"]}
    )
    assert made.status_code == 303, made.text
    audit = await admin_session.get("/admin/audit", params={"action": "plan."})
    assert "金牌套餐" in audit.text
    assert "</script><b>" not in audit.text and "\\u003c/script\\u003e\\u003cb\\u003e" in audit.text


async def test_the_chinese_pages_have_no_english_left(admin_session: Session) -> None:
    dashboard = await admin_session.get("/admin/")
    canvas = re.search(r"<canvas id=\"traffic\"[^>]*>", dashboard.text)
    assert canvas
    for label in ('data-label-calls="调用"', 'data-label-errors="错误"', 'data-label-p95="p95 毫秒"'):
        assert label in canvas.group(0)

    app = (await admin_session.call("POST", "/portal/api/apps", json={"name": unique("polish")})).json()
    await admin_session.get(f"/portal/apps/{app['id']}")
    refused = await admin_session.form(
        f"/portal/apps/{app['id']}/policy", {"overrides": "", "ip_allow": "10.0.0.300", "ip_deny": ""}
    )
    assert refused.status_code == 400, refused.text
    assert "'10.0.0.300' 不是 IP 地址或 CIDR 网段（如 10.0.0.0/8）" in refused.text.replace("&#39;", "'")
    assert "is not an IP address" not in refused.text


async def test_destructive_actions_ask_first(admin_session: Session, gateway: Gateway) -> None:
    prefix = gateway.key[:8]
    keys = await admin_session.get("/admin/keys", params={"prefix": prefix})
    assert re.search(r'action="/admin/keys/\d+/revoke" data-confirm="确定吊销此密钥', keys.text)

    await admin_session.get("/admin/accounts")
    await admin_session.form("/admin/tokens", {"name": unique("polish")})
    accounts = await admin_session.get("/admin/accounts")
    assert re.search(r'action="/admin/tokens/\d+/revoke"[^>]* hx-confirm="确定吊销此令牌', accounts.text)

    consumers = await admin_session.get("/admin/consumers")
    suspends = re.findall(r'<form[^>]*action="/admin/consumers/\d+/suspend"[^>]*>', consumers.text)
    assert suspends and all('hx-confirm="确定暂停此应用' in form for form in suspends)


async def test_a_saved_connection_is_said_so(admin_session: Session) -> None:
    name = unique("saved")
    await admin_session.get("/admin/connections")
    saved = await admin_session.form(
        "/admin/connections",
        {
            "name": name,
            "system": "kuaidi100",
            "base_url": "http://127.0.0.1:9",
            **{f"credential_{k}": v for k, v in {"customer": "c", "key": "k"}.items()},
        },
    )
    assert saved.status_code == 303, saved.text
    shown = await admin_session.get(saved.headers["location"])
    assert f"连接 {name} 已保存。" in shown.text
    assert 'data-testid="saved"' not in (await admin_session.get("/admin/connections")).text
