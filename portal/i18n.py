"""Chinese and English for the portal: templates say `{{ _("English text") }}` and this looks the text
up in portal/locale_zh.py. Add a page's strings there, or from a feature with `register` (the test
tests/portal/test_i18n.py fails on any template string that has no Chinese).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from portal import locale_zh

LOCALES = ("zh", "en")
LOCALE_NAMES = {"zh": "中文", "en": "English"}

ZH: dict[str, str] = dict(locale_zh.ZH)
_PATTERNS = [(re.compile(english), chinese) for english, chinese in locale_zh.PATTERNS]


def translate(locale: str, text: str, **values: Any) -> str:
    """`text` in `locale`, with `{name}` placeholders filled from `values`."""
    message = _chinese(text) if locale == "zh" else text
    return message.format(**values) if values else message


def _chinese(text: str) -> str:
    if text in ZH:
        return ZH[text]
    # A service's message with a name in it ("a plan named 'gold' already exists").
    for english, chinese in _PATTERNS:
        if match := english.fullmatch(text):
            return chinese.format(*match.groups())
    return text


def register(messages: Mapping[str, str]) -> None:
    """Add a feature's Chinese strings (portal/schemes/ and later features call this at import)."""
    ZH.update(messages)
