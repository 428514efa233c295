"""A signed form's body is exactly what urllib.parse.urlencode makes of it, whatever the text."""

from __future__ import annotations

import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream import form_body

text = st.text(max_size=30)


@given(st.dictionaries(text, st.one_of(text, st.integers()), max_size=12))
def test_form_body_is_urlencode(data: dict[str, str | int]) -> None:
    assert form_body(data) == urllib.parse.urlencode(data).encode()
    assert form_body(data) == form_body(dict(data))  # and the same again once its parts are remembered
