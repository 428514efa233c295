"""Small helpers that compiled mappings call: path steps, lists, fallbacks, comparisons, error wrapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, DecimalException, DivisionByZero, InvalidOperation
from typing import Any

from gateway.mapping.coerce import ZERO_DATES, kind_of, quantum, remember, show, text_or_empty, to_number
from gateway.mapping.errors import MappingError, ValueProblem
from gateway.mapping.paths import WILDCARD, Step

MISSING = object()
_ZERO = Decimal(0)
_FALSE_TEXT = frozenset({"", "0", "false", "no", "n", "off", "否"})


def get(value: Any, key: str) -> Any:
    """One `.key` step on something that is not a plain dict: a Mapping works, anything else is missing."""
    if isinstance(value, Mapping):
        return value.get(key)
    return None


def index(value: Any, position: int) -> Any:
    if isinstance(value, list | tuple) and -len(value) <= position < len(value):
        return value[position]
    return None


def walk(value: Any, steps: tuple[Step, ...]) -> Any:
    """Follow steps that include `[*]`; the result is a flat list of what every item gives (None left out)."""
    for pos, step in enumerate(steps):
        if step == WILDCARD:
            out: list[Any] = []
            for item in items(value):
                found = walk(item, steps[pos + 1 :])
                if isinstance(found, list) and WILDCARD in steps[pos + 1 :]:
                    out.extend(found)
                elif found is not None:
                    out.append(found)
            return out
        value = index(value, step) if isinstance(step, int) else get(value, step)
        if value is None:
            return None
    return value


def items(value: Any) -> list[Any] | tuple[Any, ...]:
    """A source list; a missing list is empty, and one object where a list belongs is a list of one."""
    if value.__class__ is list:
        return value  # type: ignore[no-any-return]
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, Mapping):
        return (value,)
    raise ValueProblem(f"expected a list but found {show(value)}")


def as_record(value: Any) -> dict[str, Any]:
    """A top-level record must be an object; a Mapping that is not a dict is copied into one."""
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueProblem(f"the record is {kind_of(value)}, not an object with fields: {show(value)}")


def as_item(value: Any) -> dict[str, Any]:
    """A list item that is not an object has no fields: every field of it reads as missing."""
    return dict(value) if isinstance(value, Mapping) else {}


def present(value: Any) -> bool:
    """Whether a value counts for a fallback: not missing, not empty, and not the vendors' zero date."""
    if value.__class__ is str:
        return value != "" and value not in ZERO_DATES
    return value is not None and value != [] and value != {}


def coalesce(*values: Any) -> Any:
    """The first value that is present (not missing, not empty)."""
    for value in values:
        if present(value):
            return value
    return None


def truthy(value: Any) -> bool:
    """Truth for conditions: missing, empty, 0, '0', 'false' and 'no' are false."""
    if value.__class__ is str:
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def number_or_none(value: Any) -> Decimal | None:
    try:
        return to_number(value)
    except ValueProblem:
        return None


def order(left: Any, op: str, right: Any) -> bool:
    """`<`, `<=`, `>`, `>=` on numbers; false when either side is missing."""
    a, b = to_number(left), to_number(right)
    if a is None or b is None:
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def own_number(memo: dict[str, Any], text: str | None) -> Decimal:
    """A decimal this mapping wrote itself (canonical text, or None for 0), remembered in `memo`."""
    if text is None:
        return _ZERO
    return remember(memo, text, Decimal(text))  # type: ignore[no-any-return]


def total(values: list[Decimal]) -> Decimal:
    return sum(values, _ZERO)


def round_to(value: Decimal, places: int) -> Decimal:
    rounded = value.quantize(quantum(places), ROUND_HALF_UP)
    return rounded if rounded else rounded.copy_abs()  # round(-0.001, 2) is 0.00, not -0.00


def split(value: Any, separator: str) -> list[str] | None:
    """Split text into its non-empty, trimmed parts ("T1, T2," -> ["T1", "T2"])."""
    if value is None:
        return None
    if value.__class__ is str and separator not in value:
        # One part, the usual case (one platform order per stockout): no list comprehensions to run.
        value = value.strip()
        return [value] if value else []
    if isinstance(value, list):
        return value
    parts = [part.strip() for part in text_or_empty(value).split(separator)]
    return [part for part in parts if part]


def join(value: Any, separator: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return separator.join(text_or_empty(item) for item in value if item is not None and item != "")
    return text_or_empty(value)


def translate(
    value: Any, table: dict[str, Any], on_unknown: str, label: str, refuse: dict[str, str] | None = None
) -> Any:
    """Look a value (or each value of a list) up in a value map or table; a value `refuse` names is
    refused with its reason, whatever `on_unknown` says."""
    if isinstance(value, list):
        return [translate(item, table, on_unknown, label, refuse) for item in value]
    if value is None:
        return None
    key = value if value.__class__ is str else text_or_empty(value)
    found = table.get(key, MISSING)
    if found is not MISSING:
        return found
    if refuse is not None and key in refuse:
        raise ValueProblem(f"{show(value)} is refused: {refuse[key]}")
    if key == "" or on_unknown == "default":
        return None
    if on_unknown == "keep":
        return value
    known = ", ".join(repr(k) for k in list(table)[:8]) + (", ..." if len(table) > 8 else "")
    raise ValueProblem(f"{show(value)} is not in {label} (known values: {known})")


def check_length(value: Any, limit: int) -> Any:
    text = text_or_empty(value)
    if len(text) > limit:
        raise ValueProblem(f"{show(value)} is {len(text)} characters long; at most {limit} are allowed")
    return value


def missing_required(sources: str) -> ValueProblem:
    return ValueProblem(f"a value is required but the record has none{sources}")


def describe(error: BaseException) -> str:
    """A plain-words message for an error raised while mapping one field."""
    if isinstance(error, ValueProblem):
        return str(error)
    if isinstance(error, DivisionByZero | ZeroDivisionError):
        return "the formula divides by zero"
    if isinstance(error, InvalidOperation | DecimalException):
        return "the formula's result is not a usable number"
    return f"the value could not be mapped ({type(error).__name__}: {error})"


def failure(
    key_of: Callable[[Any], Any], record: Any, field: str | None, error: BaseException
) -> MappingError:
    try:
        key = key_of(record)
    except Exception:
        key = None
    return MappingError(key, field, describe(error))
