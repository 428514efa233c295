"""An admin creates a consumer on /admin/consumers (no developer's "My apps" needed), over real HTTP: the
new consumer is listed and owned by nobody, and a refused form marks the field at fault and keeps what
was typed."""

from __future__ import annotations

from gateway.store.tables import Consumer
from tests.portal.conftest import Session, unique
from tests.portal.test_forms import field_error, input_value


async def test_an_admin_creates_a_consumer_from_the_consumers_page(admin_session: Session) -> None:
    page = await admin_session.get("/admin/consumers")
    assert 'action="/admin/consumers"' in page.text
    name = unique("admin-made")
    created = await admin_session.form("/admin/consumers", {"name": name, "description": "made by an admin"})
    # Redirected, so a reload does not post the form again.
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"/admin/consumers?created={name}"
    created = await admin_session.get(created.headers["location"])
    assert 'data-testid="created"' in created.text and name in created.text
    assert f">{name}</a>" in created.text  # listed
    row = await Consumer.select(Consumer.description, Consumer.owner).where(Consumer.name == name).first()
    assert row == {"description": "made by an admin", "owner": None}


async def test_a_refused_consumer_form_marks_its_field_and_keeps_what_was_typed(
    admin_session: Session,
) -> None:
    await admin_session.get("/admin/consumers")
    bad = await admin_session.form("/admin/consumers", {"name": "Bad Name!", "description": "kept"})
    assert bad.status_code == 400
    assert field_error(bad.text, "name")
    assert input_value(bad.text, "name") == "Bad Name!" and input_value(bad.text, "description") == "kept"
    assert await Consumer.count().where(Consumer.name == "Bad Name!") == 0

    long = await admin_session.form("/admin/consumers", {"name": unique("long"), "description": "x" * 501})
    assert long.status_code == 400 and field_error(long.text, "description")
    assert not field_error(long.text, "name")

    name = unique("twice")
    first = await admin_session.form("/admin/consumers", {"name": name})
    assert first.status_code == 303
    again = await admin_session.form("/admin/consumers", {"name": name})
    assert again.status_code == 409
    assert name in field_error(again.text, "name")  # "已存在名为 … 的应用", beside the name
    assert 'class="err banner"' not in again.text
    assert await Consumer.count().where(Consumer.name == name) == 1


async def test_developers_cannot_create_consumers_from_the_admin_page(dev_session: Session) -> None:
    await dev_session.get("/portal")
    name = unique("not-admin")
    refused = await dev_session.form("/admin/consumers", {"name": name})
    assert refused.status_code in (401, 403)
    assert await Consumer.count().where(Consumer.name == name) == 0
