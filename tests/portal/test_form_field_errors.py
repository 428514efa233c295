"""A refused connection form marks the field at fault, whatever name the service gives it (the backend
limits are the connection's `options.qps` … to the service, `qps` … to the form), over real HTTP."""

from __future__ import annotations

import re

import pytest

from tests.portal.conftest import Session, unique
from tests.portal.test_forms import field_error


def _form(**limits: str) -> dict[str, str]:
    return {
        "name": unique("limits"),
        "system": "kuaidi100",
        "base_url": "http://127.0.0.1:9",
        "credential_customer": "typed-customer",
        "credential_key": "typed-key",
        **limits,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("qps", "-1"), ("qps", "0"), ("concurrency", "-2"), ("retries", "-1"), ("timeout_seconds", "-3")],
)
async def test_a_bad_backend_limit_is_marked_beside_its_field(
    admin_session: Session, field: str, value: str
) -> None:
    await admin_session.get("/admin/connections")
    refused = await admin_session.form("/admin/connections", _form(**{field: value}))
    assert refused.status_code == 400
    message = field_error(refused.text, field)
    assert field in message, refused.text  # "options.qps: must be …", beside the qps field
    others = {"qps", "concurrency", "retries", "timeout_seconds", "options"} - {field}
    assert not any(field_error(refused.text, other) for other in others)
    assert 'class="err banner"' not in refused.text  # said once, at the field
    assert "typed-key" not in refused.text


async def test_a_bad_option_in_the_json_field_is_marked_on_that_field(admin_session: Session) -> None:
    await admin_session.get("/admin/connections")
    refused = await admin_session.form("/admin/connections", _form(options='{"breaker": {"failures": 0}}'))
    assert refused.status_code == 400
    assert "options.breaker.failures" in field_error(refused.text, "options")
    assert not field_error(refused.text, "qps")


async def test_an_error_no_field_shows_is_said_above_the_form(admin_session: Session) -> None:
    """A missing credential has its own place; the form keeps saying it there, not twice."""
    await admin_session.get("/admin/connections")
    data = _form()
    del data["credential_key"]
    refused = await admin_session.form("/admin/connections", data)
    assert refused.status_code == 400
    said = re.findall(r'<small class="err" role="alert">([^<]*)<', refused.text)
    assert len(said) == 1 and "key" in said[0], said
    assert 'class="err banner"' not in refused.text
