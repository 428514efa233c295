"""PII masking: receiver mobile and phone numbers, ID card numbers and street addresses, in logs, error
details, stored request samples and, for callers without the `pii:read` scope, in API answers.

An API key carries every right of its application, `pii:read` included (the application is the party the
data was entrusted to); an OAuth2 token carries only the scopes it was granted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

PII_READ = "pii:read"
MASK = "****"

# A mainland mobile number as people write it: 13812345678, +86 138 1234 5678, 0086-138-1234-5678,
# 8613812345678. Groups: prefix, first three digits, separator, separator, last four.
_MOBILE = re.compile(r"(?<!\d)((?:\+|00)?86[- ]?)?(1[3-9]\d)([- ]?)\d{4}([- ]?)(\d{4})(?!\d)")
_ID_CARD = re.compile(r"(?<![\dA-Za-z])(\d{3})\d{11}(\d{3}[\dXx])(?![\dA-Za-z])")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")

# Field names (vendor and canonical) whose whole value is personal; matched case-insensitively.
MOBILE_FIELDS = frozenset({"mobile", "receiver_mobile", "buyer_mobile", "sender_mobile", "phone_mobile"})
PHONE_FIELDS = frozenset(
    {"phone", "tel", "telephone", "telno", "receiver_telno", "receiver_phone", "buyer_phone", "sender_phone"}
)
ID_FIELDS = frozenset({"id_card", "idcard", "id_card_no", "id_no", "receiver_id_card", "buyer_id_card"})
ADDRESS_FIELDS = frozenset(
    {"address", "receiver_address", "buyer_address", "sender_address", "street", "receiver_street"}
)


def may_read(granted_scopes: Iterable[str] | None) -> bool:
    """Whether a caller sees receivers and remote_data unmasked: a key (None: every right) or `pii:read`."""
    return granted_scopes is None or PII_READ in granted_scopes


def _keep(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return MASK
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_mobile(value: str) -> str:
    """13812345678 -> 138****5678."""
    digits = value.strip()
    return _keep(digits, 3, 4)


def mask_phone(value: str) -> str:
    """0571-88776655 -> 0571-****6655: the area code and the last four digits stay."""
    text = value.strip()
    if _MOBILE.fullmatch(text):
        return mask_mobile(text)
    head = text.find("-") + 1 if "-" in text else min(4, max(0, len(text) - 8))
    return _keep(text, head, 4)


def mask_id_card(value: str) -> str:
    """110101199003071234 -> 110***********1234."""
    return _keep(value.strip(), 3, 4)


def mask_address(value: str) -> str:
    """Keep the start (the road, rarely the door), drop the rest: 文三路100号5幢2单元301室 -> 文三路1****."""
    text = value.strip()
    return text[: min(4, len(text) // 3)] + MASK if text else text


_HEX = frozenset("0123456789abcdefABCDEF")
# Request ids (32), trace ids and hashes keep at least this many hex characters around a number inside them;
# a number with a few letters stuck to it (`deface13812345678`) is still a number.
_HEX_AROUND = 8


def _in_hex_token(text: str, start_of_match: int, end_of_match: int) -> bool:
    """Whether the match lies inside a long hex token with a letter in it (a request id, a hash):
    its digits are nobody's number, and masking them would make the id impossible to quote or find."""
    if not _HEX.issuperset(text[start_of_match:end_of_match]):  # `+86 138…`: written as a number
        return False
    start, end = start_of_match, end_of_match
    while start > 0 and text[start - 1] in _HEX:
        start -= 1
    while end < len(text) and text[end] in _HEX:
        end += 1
    token = text[start:end]
    return len(token) - (end_of_match - start_of_match) >= _HEX_AROUND and not token.isdigit()


def mask_text(text: str) -> str:
    """Mobile, landline and ID card numbers found anywhere in free text (log lines, vendor messages)."""
    if not any(ch.isdigit() for ch in text):
        return text
    text = _ID_CARD.sub(lambda m: m.group(1) + "*" * 11 + m.group(2), text)
    return _LANDLINE.sub(_masked_landline, _MOBILE.sub(_masked_mobile, text))


def _unless_in_hex_token(mask: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    def masked(m: re.Match[str]) -> str:
        return m.group(0) if _in_hex_token(m.string, *m.span()) else mask(m)

    return masked


_masked_mobile = _unless_in_hex_token(
    lambda m: (m.group(1) or "") + m.group(2) + m.group(3) + "****" + "".join(m.group(4, 5))
)
_masked_landline = _unless_in_hex_token(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3))


def mask_query(query: str) -> str:
    """A URL query made readable and masked: each value decoded (`%2B86…` is a number too), then masked by
    its parameter's name (`phone=138****5678`) or, for any other parameter, as free text."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{mask_text(name)}={mask_field(name, value)}" for name, value in pairs)


def mask_field(name: str, value: Any, free_text: bool = True) -> Any:
    """The masked value of one field, by its name; with `free_text`, numbers found in any other string."""
    if not isinstance(value, str) or not value:
        return value
    key = name.lower()
    if key in MOBILE_FIELDS:
        return mask_mobile(value)
    if key in PHONE_FIELDS:
        return mask_phone(value)
    if key in ID_FIELDS:
        return mask_id_card(value)
    if key in ADDRESS_FIELDS:
        return mask_address(value)
    return mask_text(value) if free_text else value


def mask_json(value: Any, free_text: bool = True) -> Any:
    """A copy of a JSON-like value with every personal field masked, and with `free_text` every number
    that looks personal in other strings too (logs and errors; not API answers, whose codes could match)."""
    if isinstance(value, dict):
        return {
            k: mask_json(v, free_text) if isinstance(v, dict | list) else mask_field(str(k), v, free_text)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_json(item, free_text) for item in value]
    if isinstance(value, str) and free_text:
        return mask_text(value)
    return value


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A unified record as a caller without `pii:read` sees it: receiver and remote_data fields masked."""
    return mask_json(record, free_text=False)  # type: ignore[no-any-return]
