"""Policy config schemas are msgspec Structs; `parse` names the field of a bad value in InvalidParameter."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from gateway.errors import InvalidParameter

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(.*)`$")
_WORDS = (
    ("`int | null`", "a whole number or null"),
    ("`float | null`", "a number or null"),
    ("`array | null`", "a list or null"),
    ("`int`", "a whole number"),
    ("`float`", "a number"),
    ("`bool`", "true or false"),
    ("`str`", "a string"),
    ("`array`", "a list"),
    ("`object`", "an object"),
)


def parse(schema: type[T], raw: Any, field: str) -> T:
    """`raw` as a `schema`, or InvalidParameter whose `field` is the dotted path (`config.quotas.per_day`)."""
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        path = ".".join(part for part in (field, at.group(1) if at else "") if part)
        message = text[: at.start()] if at else text
        for kind, words in _WORDS:
            message = message.replace(f"Expected {kind}", f"must be {words}")
        message = message.replace("Object contains unknown field", "unknown field")
        raise InvalidParameter(path or field, f"{path or field}: {message}") from None


def invalid(field: str, message: str) -> InvalidParameter:
    """A cross-field rule broken: the error names the field to change."""
    return InvalidParameter(field, f"{field}: {message}")
