"""Chinese and English for the portal: templates say `{{ _("English text") }}`; this is the Chinese.

Add a page's strings to `ZH` (tests/portal/test_i18n.py fails on any template string missing here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LOCALES = ("zh", "en")
LOCALE_NAMES = {"zh": "中文", "en": "English"}

ZH: dict[str, str] = {}


def translate(locale: str, text: str, **values: Any) -> str:
    """`text` in `locale`, with `{name}` placeholders filled from `values`."""
    message = ZH.get(text, text) if locale == "zh" else text
    return message.format(**values) if values else message


def negotiate(accept_language: str | None, default: str) -> str:
    """The first supported language in an Accept-Language header, else `default`."""
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().lower()
        if tag[:2] in LOCALES:
            return tag[:2]
    return default


def register(messages: Mapping[str, str]) -> None:
    """Add a feature's Chinese strings (portal/schemes/ and later features call this at import)."""
    ZH.update(messages)
