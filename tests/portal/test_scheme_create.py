"""Creating and deleting a scheme from the admin pages over real HTTP (plain form posts, as without
JavaScript): the new scheme starts with a mapping of its own and opens in the designer; a refused form says
why beside the field and keeps what was typed; a running scheme is not deleted; forms need the CSRF token."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import pytest

from gateway.errors import NotFound
from gateway.schemes import service
from gateway.store.scheme_tables import MappingVersion, Scheme, SchemeRun
from portal.services import audit
from tests.portal.conftest import Account, Session, make_account, unique
from tests.portal.test_forms import field_error, input_value

ENDS = {
    "source_connection": "wdt-demo",
    "source_operation": "stockout_order_query_trade",
    "target_connection": "wdt-target",
    "target_operation": "trade_push",
}


def selected(page: str, field: str) -> tuple[str, str] | None:
    """The option chosen in the select `field`: (the optgroup it is under, or "", its value)."""
    select = re.search(rf'<select id="f-{re.escape(field)}"[^>]*>(.*?)</select>', page, re.S)
    assert select, f"no select {field}"
    group = ""
    for match in re.finditer(
        r'<optgroup label="([^"]*)"|<option value="([^"]*)"( selected)?', select.group(1)
    ):
        if match.group(1) is not None:
            group = html.unescape(match.group(1))
        elif match.group(3):
            return group, html.unescape(match.group(2))
    return None


async def versions(name: str) -> int:
    return await MappingVersion.count().where(MappingVersion.name == name)


async def test_an_admin_creates_a_scheme_with_a_starting_mapping_and_lands_on_its_designer(
    admin_session: Session, admin: Account
) -> None:
    page = await admin_session.get("/admin/schemes")
    assert page.status_code == 200
    assert 'action="/admin/schemes"' in page.text and 'name="_csrf_token"' in page.text
    # The form offers what the designer's selects offer: connections with operations in that role.
    assert selected(page.text, "source_connection") is None  # nothing chosen yet: the browser takes the first
    assert (
        '<optgroup label="wdt-demo" data-connection="wdt-demo"><option value="stockout_order_query_trade"'
        in (page.text)
    )
    assert '<option value="kd100-demo"' not in page.text  # kuaidi100 is neither a source nor a target

    name = unique("新方案 demo")  # any printable name but '/': Chinese and a space included
    created = await admin_session.form(
        "/admin/schemes",
        {
            **ENDS,
            "name": name,
            "description": "made in the portal",
            "priority": "high",
            "schedule": "every 10m",
        },
    )
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"/admin/schemes/{quote(name, safe='')}"

    designer = await admin_session.get(created.headers["location"])
    assert designer.status_code == 200
    assert f'data-scheme="{name}"' in designer.text
    # In the audit log as every admin change is: who, and the scheme as made.
    [event] = [e for e in await audit.list_events(action="scheme.create") if e["target"] == name]
    assert event["actor"] == admin.username and event["after"]["priority"] == "high"

    scheme = await service.get_scheme(name)
    assert (scheme["description"], scheme["priority"], scheme["enabled"]) == (
        "made in the portal",
        "high",
        False,
    )
    definition = scheme["definition"]
    assert definition["source"]["connection"] == "wdt-demo"
    assert definition["source"]["operation"] == "stockout_order_query_trade"
    assert (definition["target"]["connection"], definition["target"]["operation"]) == (
        "wdt-target",
        "trade_push",
    )
    assert definition["schedule"] == "every 10m"
    # Its own mapping, named after it: the target's record key from the source's, the rest left to map.
    assert definition["mapping"] == {"name": name, "version": 1}
    mapping = await service.get_mapping(name, 1)
    assert mapping["spec"]["key"] == "stockout_no"
    assert mapping["spec"]["fields"] == {"tid": {"from": "stockout_no"}}
    # What the designer does with it: map a record.
    assert service.preview(mapping["spec"], [{"stockout_no": "SO-1"}])["records"] == [{"tid": "SO-1"}]

    listed = await admin_session.get("/admin/schemes")
    assert f'<tr data-scheme="{name}">' in listed.text


async def test_a_refused_scheme_form_says_why_beside_the_field_and_keeps_what_was_typed(
    admin_session: Session,
) -> None:
    await admin_session.get("/admin/schemes")
    taken = unique("taken")
    assert (await admin_session.form("/admin/schemes", {**ENDS, "name": taken})).status_code == 303
    typed = {**ENDS, "description": "kept", "priority": "low", "schedule": "every 5m"}

    again = await admin_session.form("/admin/schemes", {**typed, "name": taken})
    assert again.status_code == 409
    assert (
        field_error(again.text, "name") == f"已存在名为 &#39;{taken}&#39; 的方案"
    )  # the portal's default: 中文
    assert 'class="err banner"' not in again.text
    assert input_value(again.text, "name") == taken
    assert input_value(again.text, "description") == "kept"
    assert input_value(again.text, "schedule") == "every 5m"
    assert selected(again.text, "priority") == ("", "low")
    assert selected(again.text, "source_connection") == ("", "wdt-demo")
    assert selected(again.text, "source_operation") == ("wdt-demo", "stockout_order_query_trade")
    assert selected(again.text, "target_operation") == ("wdt-target", "trade_push")
    assert await Scheme.count().where(Scheme.name == taken) == 1
    assert await versions(taken) == 1  # the refused form wrote no second starting mapping

    bad = await admin_session.form("/admin/schemes", {**typed, "name": "a/b"})
    assert bad.status_code == 400
    assert "'/'" in html.unescape(field_error(bad.text, "name"))
    assert input_value(bad.text, "name") == "a/b"

    cases = {
        # field sent -> (value, the form's field the message is beside, words of the message)
        "source_connection": ("nowhere", "source_connection", "没有名为 'nowhere' 的连接"),
        "target_connection": ("gone", "target_connection", "没有名为 'gone' 的连接"),
        "source_operation": ("trade_push", "source_operation", "没有来源操作 'trade_push'"),
        "schedule": ("every now and then", "schedule", "既不是 cron 表达式"),
    }
    for sent, (value, beside, words) in cases.items():
        name = unique("refused")
        answer = await admin_session.form("/admin/schemes", {**typed, "name": name, sent: value})
        assert answer.status_code == 400, (sent, answer.text)
        assert words in html.unescape(field_error(answer.text, beside)), (sent, answer.text)
        assert not field_error(answer.text, "name")
        assert input_value(answer.text, "name") == name and input_value(answer.text, "description") == "kept"
        assert await Scheme.count().where(Scheme.name == name) == 0
        assert await versions(name) == 0, sent  # checked whole before anything is written


async def test_the_new_scheme_form_speaks_english_to_an_admin_who_chose_it(
    signed_in: Callable[[Account], Awaitable[Session]],
) -> None:
    session = await signed_in(await make_account("admin", prefix="admin-en"))
    await session.get("/portal")
    assert (
        await session.form("/portal/locale", {"locale": "en", "next": "/admin/schemes"})
    ).status_code == 303
    page = await session.get("/admin/schemes")
    assert "New scheme" in page.text and "Create scheme" in page.text
    taken = unique("taken-en")
    assert (await session.form("/admin/schemes", {**ENDS, "name": taken})).status_code == 303
    again = await session.form("/admin/schemes", {**ENDS, "name": taken})
    assert again.status_code == 409
    assert html.unescape(field_error(again.text, "name")) == f"there is already a scheme named '{taken}'"


async def test_forms_without_the_csrf_token_change_nothing(admin_session: Session) -> None:
    await admin_session.get("/admin/schemes")
    name = unique("no-csrf")
    refused = await admin_session.form("/admin/schemes", {**ENDS, "name": name}, csrf=False)
    assert refused.status_code == 403
    assert await Scheme.count().where(Scheme.name == name) == 0

    assert (await admin_session.form("/admin/schemes", {**ENDS, "name": name})).status_code == 303
    kept = await admin_session.form(f"/admin/schemes/{quote(name, safe='')}/delete", csrf=False)
    assert kept.status_code == 403
    assert await Scheme.count().where(Scheme.name == name) == 1


async def test_a_running_scheme_is_not_deleted_and_a_stopped_one_is(admin_session: Session) -> None:
    await admin_session.get("/admin/schemes")
    name = unique("to-delete")
    assert (await admin_session.form("/admin/schemes", {**ENDS, "name": name})).status_code == 303
    run = await service.run_now(name, full=True)  # queued: a worker would take it, so it counts as running
    path = f"/admin/schemes/{quote(name, safe='')}"

    await admin_session.get(path)
    refused = await admin_session.form(f"{path}/delete")
    assert refused.status_code == 409
    result = re.search(r'<p id="action-result"[^>]*>([^<]*)</p>', refused.text)
    assert result and html.unescape(result.group(1)) == f"方案 '{name}' 正在运行；请先停止它"
    assert f'data-run="{run}"' in refused.text  # the designer, with the run that holds it
    assert await Scheme.count().where(Scheme.name == name) == 1

    await service.stop(name)
    assert (await SchemeRun.select(SchemeRun.status).where(SchemeRun.id == run).first()) == {
        "status": "stopped"
    }
    deleted = await admin_session.form(f"{path}/delete")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/admin/schemes?deleted={quote(name, safe='')}"
    listed = await admin_session.get(deleted.headers["location"])
    assert f"方案 {name} 已删除。" in listed.text
    assert f'<tr data-scheme="{name}">' not in listed.text
    with pytest.raises(NotFound):
        await service.get_scheme(name)
    assert await SchemeRun.count().where(SchemeRun.id == run) == 0  # its history went with it
    assert await versions(name) == 1  # mapping versions are kept (other schemes may name them)

    gone = await admin_session.form(f"{path}/delete")
    assert gone.status_code == 404


async def test_developers_cannot_create_or_delete_schemes(
    dev_session: Session, admin_session: Session
) -> None:
    await admin_session.get("/admin/schemes")
    name = unique("admins-only")
    assert (await admin_session.form("/admin/schemes", {**ENDS, "name": name})).status_code == 303
    await dev_session.get("/portal")
    created = await dev_session.form("/admin/schemes", {**ENDS, "name": unique("dev")})
    assert created.status_code in (401, 403)
    deleted = await dev_session.form(f"/admin/schemes/{quote(name, safe='')}/delete")
    assert deleted.status_code in (401, 403)
    assert await Scheme.count().where(Scheme.name == name) == 1
