"""Chinese and English: every text a template shows has its Chinese, and the language is the user's choice,
Chinese by default."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
from jinja2 import Environment, nodes

from gateway.settings import load_settings
from portal import nav
from portal.app import portal_routes
from portal.i18n import ZH, translate
from portal.services.apps import key_state
from tests.conftest import SECRET_KEY, Gateway
from tests.portal.conftest import Account, sign_in

PORTAL = Path(__file__).resolve().parents[2] / "portal"
# Arguments that the macros in _macros.html translate: field(name, LABEL, hint=...), empty(TEXT).
_TRANSLATED_ARGS = {"_": 0, "field": 1, "empty": 0}


def _template_texts() -> Iterator[tuple[str, str]]:
    env = Environment()
    for path in sorted(PORTAL.rglob("templates/**/*.html")):
        tree = env.parse(path.read_text())
        for call in tree.find_all(nodes.Call):
            if not isinstance(call.node, nodes.Name) or call.node.name not in _TRANSLATED_ARGS:
                continue
            position = _TRANSLATED_ARGS[call.node.name]
            if len(call.args) > position and isinstance(call.args[position], nodes.Const):
                yield path.name, call.args[position].value
            for keyword in call.kwargs:
                if keyword.key == "hint" and isinstance(keyword.value, nodes.Const):
                    yield path.name, keyword.value.value
        # Labels listed in a template's own loops: {% for action, label in (("approve", "Approve"), ...) %}
        for loop in tree.find_all(nodes.For):
            if isinstance(loop.iter, nodes.Tuple) and isinstance(loop.target, nodes.Tuple):
                for item in loop.iter.items:
                    if isinstance(item, nodes.Tuple) and isinstance(item.items[-1], nodes.Const):
                        yield path.name, item.items[-1].value


def _page_titles() -> Iterator[tuple[str, str]]:
    for path in sorted(PORTAL.glob("*.py")):
        for title in re.findall(r'title="([^"]+)"', path.read_text()):
            yield path.name, title


def test_every_template_text_has_chinese() -> None:
    portal_routes(
        load_settings({"UNIGATE_SECRET_KEY": SECRET_KEY})
    )  # every feature registers its nav and strings
    texts = [*_template_texts(), *_page_titles()]
    texts += [("nav.py", entry.label) for section in ("developer", "admin") for entry in nav.entries(section)]
    assert len(texts) > 150
    missing = sorted({f"{where}: {text!r}" for where, text in texts if text not in ZH})
    assert not missing, "\n".join(missing)


# The errors the portal's own code raises, and where their message is (InvalidParameter: field, message).
_ERRORS = {"InvalidParameter": 1, "Conflict": 0, "NotFound": 0, "Forbidden": 0, "Unauthorized": 0}


def _fixed_error_messages() -> Iterator[tuple[str, str]]:
    paths = [*PORTAL.glob("*.py"), *PORTAL.glob("services/*.py")]
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ERRORS:
                position = _ERRORS[node.func.id]
                if len(node.args) > position and isinstance(node.args[position], ast.Constant):
                    yield path.name, node.args[position].value


def test_every_fixed_error_message_a_form_can_show_has_chinese() -> None:
    messages = list(_fixed_error_messages())
    assert len(messages) > 20
    missing = sorted({f"{where}: {text!r}" for where, text in messages if text not in ZH})
    assert not missing, "\n".join(missing)


def test_messages_with_names_in_them_are_translated_around_the_name() -> None:
    assert translate("zh", "a plan named 'gold' already exists") == "已存在名为 'gold' 的套餐"
    assert translate("zh", "a consumer named 'shop-1' already exists") == "已存在名为 'shop-1' 的应用"
    assert translate("zh", "qps must be a number") == "qps 须为数字"
    assert translate("zh", "this application is already subscribed to orders") == "该应用已订阅 orders"
    assert translate("en", "qps must be a number") == "qps must be a number"
    assert translate("zh", "something nobody translated") == "something nobody translated"


def test_the_states_a_page_shows_have_chinese() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    states = {
        key_state({"revoked_at": now, "expires_at": None}),
        key_state({"revoked_at": None, "expires_at": None}),
        key_state({"revoked_at": None, "expires_at": now.replace(year=now.year + 1)}),
        key_state({"revoked_at": None, "expires_at": now.replace(year=now.year - 1)}),
    }
    for text in (
        *states,
        "pending",
        "active",
        "suspended",
        "disabled",
        "admin",
        "developer",
        "closed",
        "open",
    ):
        assert text in ZH, text


async def test_pages_are_chinese_by_default_and_follow_the_users_choice(
    gateway: Gateway, developer: Account
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        login = await http.get("/portal/login")
        assert '<html lang="zh-CN">' in login.text and "登录" in login.text
    session = await sign_in(gateway.url, developer)
    try:
        home = await session.get("/portal")
        assert "我的应用" in home.text
        switched = await session.form("/portal/locale", {"locale": "en", "next": "/portal"})
        assert switched.status_code == 303 and switched.headers["location"] == "/portal"
        home = await session.get("/portal")
        assert '<html lang="en">' in home.text and "My apps" in home.text and "我的应用" not in home.text
    finally:
        await session.http.aclose()
    # Remembered on the account: a new sign-in (another browser) gets English too.
    again = await sign_in(gateway.url, developer)
    try:
        assert "My apps" in (await again.get("/portal")).text
    finally:
        await again.http.aclose()
