"""The named functions a spec may apply to a value (`fn: [trim, upper]`), with their argument checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, InvalidOperation
from typing import Any

from gateway.mapping.coerce import quantum, show, text_or_empty, to_number, to_text
from gateway.mapping.errors import ValueProblem

Fn = Callable[[Any], Any]
_HASHES = ("sha256", "md5", "sha1")


def _each(op: Callable[[str], Any]) -> Fn:
    """Apply a text operation to a value, or to every item of a list (as `split` makes)."""

    def run(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is list:
            return [None if item is None else op(to_text(item) or "") for item in value]
        return op(to_text(value) or "")

    return run


def _ints(args: list[Any], count: range, usage: str) -> list[int]:
    if len(args) not in count or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise ValueError(usage)
    return args


def _upper(args: list[Any]) -> Fn:
    _ints(args, range(0, 1), "upper takes no settings")
    return _each(str.upper)


def _lower(args: list[Any]) -> Fn:
    _ints(args, range(0, 1), "lower takes no settings")
    return _each(str.lower)


def _trim(args: list[Any]) -> Fn:
    if len(args) > 1 or (args and not isinstance(args[0], str)):
        raise ValueError("trim takes at most one setting: the characters to remove, e.g. {trim: ' ,'}")
    chars = args[0] if args else None
    return _each(lambda text: text.strip(chars))


def _substr(args: list[Any]) -> Fn:
    usage = "substr takes a start position and optionally a length, e.g. {substr: [0, 4]}"
    start, *rest = _ints(args, range(1, 3), usage)
    if start < 0 or (rest and rest[0] < 0):
        raise ValueError(usage + "; both must be 0 or more")
    end = start + rest[0] if rest else None
    return _each(lambda text: text[start:end])


def _replace(args: list[Any]) -> Fn:
    if len(args) != 2 or not all(isinstance(a, str) for a in args):
        raise ValueError(
            "replace takes the text to find and the text to put instead, e.g. {replace: ['-', '']}"
        )
    old, new = args
    return _each(lambda text: text.replace(old, new))


def _round(args: list[Any]) -> Fn:
    (places,) = _ints(args or [0], range(1, 2), "round takes the number of decimal places, e.g. {round: 2}")
    step = quantum(places)

    def run(value: Any) -> Any:
        number = to_number(value)
        if number is None:
            return None
        try:
            rounded = number.quantize(step, ROUND_HALF_UP)
            return rounded if rounded else rounded.copy_abs()  # zero has no sign
        except InvalidOperation:
            raise ValueProblem(f"{show(value)} is too large to round to {places} places") from None

    return run


def _now(args: list[Any]) -> Fn:
    _ints(args, range(0, 1), "now takes no settings; give the output form with type: datetime")
    return lambda _value: datetime.now(UTC)


def _mask(args: list[Any]) -> Fn:
    keep_start, keep_end = _ints(
        args or [3, 4],
        range(2, 3),
        "mask takes how many characters to keep at the start and end, e.g. {mask: [3, 4]}",
    )

    def hide(text: str) -> str:
        if len(text) > keep_start + keep_end:
            return (
                text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[len(text) - keep_end :]
            )
        # Too short to keep both ends: keep one character so a name like 张三 still reads as 张*.
        return text[:1] + "*" * (len(text) - 1)

    return _each(hide)


def _hash(args: list[Any]) -> Fn:
    algorithm = args[0] if args else "sha256"
    if len(args) > 1 or algorithm not in _HASHES:
        raise ValueError(f"hash takes one of {', '.join(_HASHES)} (sha256 if not given)")
    return _each(lambda text: hashlib.new(algorithm, text.encode()).hexdigest())


def _pick(position: int, name: str) -> Callable[[list[Any]], Fn]:
    def build(args: list[Any]) -> Fn:
        _ints(args, range(0, 1), f"{name} takes no settings")

        def run(value: Any) -> Any:
            if isinstance(value, list | tuple):
                return value[position] if value else None
            return value

        return run

    return build


def _length(args: list[Any]) -> Fn:
    _ints(args, range(0, 1), "length takes no settings")
    return lambda value: (
        None if value is None else len(value) if isinstance(value, list) else len(text_or_empty(value))
    )


FUNCTIONS: dict[str, Callable[[list[Any]], Fn]] = {
    "upper": _upper,
    "lower": _lower,
    "trim": _trim,
    "substr": _substr,
    "replace": _replace,
    "round": _round,
    "now": _now,
    "mask": _mask,
    "hash": _hash,
    "first": _pick(0, "first"),
    "last": _pick(-1, "last"),
    "length": _length,
}

# Functions that make a value out of nothing, so a field may consist of them alone.
SOURCES = frozenset({"now"})
# Functions whose result is a list item (not text) even when given a list.
LIST_TO_ITEM = frozenset({"first", "last", "length"})


def build(name: str, args: list[Any]) -> Fn:
    """The function `name` with its settings; raises ValueError with a plain message if misused."""
    return FUNCTIONS[name](args)
