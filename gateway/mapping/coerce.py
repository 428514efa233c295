"""Type coercions used by compiled mappings: text, whole numbers, decimals, yes/no and date-times."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.mapping.errors import ValueProblem

TYPES = ("string", "int", "decimal", "bool", "datetime")

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on", "是"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", "否"})
# Vendors (Wangdiantong among them) send "no date" as a zero date rather than leaving the field out.
ZERO_DATES = frozenset({"", "0000-00-00 00:00:00", "0000-00-00", "0000-00-00T00:00:00"})


def show(value: Any) -> str:
    """A value quoted for an error message, cut short so a huge value cannot flood a run log."""
    text = str(value) if value.__class__ is Decimal else repr(value)  # 12.5, not Decimal('12.5')
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return "a value"


def to_text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return written_out(value, value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise ValueProblem(f"expected text but found {kind_of(value)}: {show(value)}")


# A number written out with more digits than this is refused: "1e999999" is eight characters of text
# but a million digits, and making a whole number of it takes Python minutes.
MAX_DIGITS = 100
# The decimal context's precision (the default; nothing in the gateway changes it): quantize refuses a
# result with more digits, so shortcuts that write digits themselves stay within it.
PRECISION = 28


def too_long(number: Decimal) -> bool:
    """Whether a finite decimal has more than MAX_DIGITS digits when written out in full."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return max(number.adjusted() + 1, 1) + max(-exponent, 0) > MAX_DIGITS


def written_out(number: Decimal, value: Any) -> str:
    """`number` in plain digits (`1E+2` -> `100`); ValueProblem if that takes more than MAX_DIGITS."""
    if too_long(number):
        raise ValueProblem(f"{show(value)} has more than {MAX_DIGITS} digits written out")
    return format(number if number else number.copy_abs(), "f")  # zero has no sign


def text_or_empty(value: Any) -> str:
    """For templates and concatenation: a missing value contributes nothing."""
    if value is None:
        return ""
    return value if value.__class__ is str else (to_text(value) or "")


def to_number(value: Any) -> Decimal | None:
    """A decimal from a vendor value; None and empty text mean 'no value'."""
    cls = value.__class__
    if cls is str:
        text = value.strip()
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueProblem(f"{show(value)} is not a number") from None
        if not number.is_finite():
            raise ValueProblem(f"{show(value)} is not a number")
        return number
    if cls is Decimal:
        if not value.is_finite():
            raise ValueProblem(f"{show(value)} is not a number")
        return value  # type: ignore[no-any-return]
    if value is None:
        return None
    if cls is int:
        return Decimal(value)
    if cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueProblem(f"{show(value)} is not a number")
        return Decimal(repr(value))
    if cls is bool:
        raise ValueProblem(f"{show(value)} is yes/no, not a number")
    # Subclasses (an IntEnum, a str subclass) are read through their base type.
    if isinstance(value, str):
        return to_number(str(value))
    if isinstance(value, int):
        return Decimal(int(value))
    if isinstance(value, float):
        return to_number(float(value))
    if isinstance(value, Decimal):
        return to_number(Decimal(value))
    raise ValueProblem(f"expected a number but found {kind_of(value)}: {show(value)}")


_ZERO = Decimal(0)


def arith(value: Any) -> Decimal:
    """A decimal for arithmetic: a missing or empty value counts as 0."""
    if value.__class__ is str and value:
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None  # let to_number strip blanks or word the error
        if number is not None and number.is_finite():
            return number
    elif value.__class__ is Decimal and value.is_finite():
        return value  # type: ignore[no-any-return]
    number = to_number(value)
    return _ZERO if number is None else number


@lru_cache(maxsize=64)
def quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)


# Vendor amounts repeat a great deal (0.0000, 1.0000, a catalogue's prices), so compiled mappings
# remember recent text -> result conversions; each memo is cleared when it reaches this size.
MEMO_SIZE = 4096


def remember(memo: dict[str, Any], text: str, result: Any) -> Any:
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[text] = result
    return result


def make_decimal(
    scale: int | None, as_text: bool, from_text: bool = True, memo: dict[str, Any] | None = None
) -> Callable[[Any], Any]:
    """A coercion to a decimal at `scale` places, as a decimal string (the default) or a Decimal.

    `from_text` says the values are mostly vendor text (as opposed to Decimals from a formula);
    `memo`, if given, keeps text -> result for the compiled code to look up before calling.
    """
    step = quantum(scale) if scale is not None else None
    # str() is 3x faster than format(..., "f") and writes plain digits while the exponent stays >= -6.
    # (Quantizing keeps a number within the context's 28 digits; without a scale it must be checked.)
    render = str if scale is not None and scale <= 6 else lambda number: format(number, "f")

    def coerce(value: Any) -> Any:
        number = value if value.__class__ is Decimal and value.is_finite() else to_number(value)
        if number is None:
            return None
        if step is not None:
            try:
                number = number.quantize(step, ROUND_HALF_UP)
            except InvalidOperation:
                raise ValueProblem(f"{show(value)} is too large for {scale} decimal places") from None
        if not number and number.is_signed():  # -0, or -0.001 at 2 places: zero has no sign
            number = number.copy_abs()
        if not as_text:
            return number
        return render(number) if step is not None else written_out(number, value)

    if scale is None or not as_text or not from_text:
        return coerce
    padding = ["0" * (scale - used) for used in range(scale + 1)]

    def coerce_text(value: Any) -> Any:
        # Vendors mostly send plain digits already at or under the scale ("12.5", "3.0000"): pad them
        # without a Decimal round trip; anything else (signs, rounding, exponents) takes the full path.
        if value.__class__ is not str:
            return coerce(value)
        if value.isascii():
            whole, dot, fraction = value.partition(".")
            if (
                whole.isdigit()
                and (whole[0] != "0" or len(whole) == 1)
                # Within the context's precision, where quantize would refuse the number as too large.
                and len(whole) + scale <= PRECISION
                and (fraction.isdigit() if fraction else not dot)
            ):
                used = len(fraction)
                if used == scale:
                    result = value
                elif used < scale:
                    result = f"{whole}.{fraction}{padding[used]}" if scale else whole
                elif not fraction[scale:].strip("0"):
                    # More places than the scale, all zeros ("946.0000" at 2): nothing to round.
                    result = f"{whole}.{fraction[:scale]}" if scale else whole
                else:
                    result = coerce(value)
                return result if memo is None else remember(memo, value, result)
        result = coerce(value)
        return result if memo is None else remember(memo, value, result)

    return coerce_text


def to_int(value: Any) -> int | None:
    cls = value.__class__
    if cls is int:
        return value  # type: ignore[no-any-return]
    if cls is str:
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:  # not '²', not 5,000 digits
            return int(text)
    if value is None:
        return None
    if cls is bool:
        return int(value)
    number = to_number(value)
    if number is None:
        return None
    if number.adjusted() >= MAX_DIGITS:
        raise ValueProblem(f"{show(value)} has more than {MAX_DIGITS} digits written out")
    if number != number.to_integral_value():
        raise ValueProblem(f"{show(value)} is not a whole number")
    return int(number)


def to_bool(value: Any) -> bool | None:
    if value is True or value is False or value is None:
        return value  # type: ignore[no-any-return]
    if isinstance(value, int | Decimal | float):
        if value in (0, 1):
            return bool(value)
        raise ValueProblem(f"{show(value)} is not a yes/no value (use 1 or 0)")
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueProblem(f"{show(value)} is not a yes/no value (use 1/0, true/false or yes/no)")
    raise ValueProblem(f"expected a yes/no value but found {kind_of(value)}: {show(value)}")


def make_bool(output: str) -> Callable[[Any], Any]:
    """`output`: bool (True/False), int (1/0) or string ("1"/"0")."""
    if output == "int":
        return lambda value: None if (flag := to_bool(value)) is None else int(flag)
    if output == "string":
        return lambda value: None if (flag := to_bool(value)) is None else ("1" if flag else "0")
    return to_bool


def make_int(output: str) -> Callable[[Any], Any]:
    if output == "string":
        return lambda value: None if (number := to_int(value)) is None else str(number)
    return to_int


# --- date-times ------------------------------------------------------------------------------------

RFC3339 = "rfc3339"
EPOCH = "epoch"
EPOCH_MS = "epoch_ms"
DATETIME_KEYWORDS = (RFC3339, EPOCH, EPOCH_MS)

# Java/ICU-style pattern letters, as vendor documents write them (`yyyy-MM-dd HH:mm:ss`).
_TOKENS = {
    "yyyy": "%Y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
    "SSSSSS": "%f",
    "SSS": "%f",
    "XXX": "%z",
    "Z": "%z",
}
_TOKEN_RE = re.compile(r"'[^']*'|yyyy|MM|dd|HH|mm|ss|SSSSSS|SSS|XXX|Z|[A-Za-z]")
_ISO_SHAPES = {"%Y-%m-%d %H:%M:%S": 19, "%Y-%m-%dT%H:%M:%S": 19, "%Y-%m-%d": 10}


_LETTER_HINTS = {
    "Y": " (did you mean yyyy, the year?)",
    "y": " (did you mean yyyy, the year?)",
    "D": " (did you mean dd, the day of the month?)",
    "d": " (did you mean dd, the day of the month?)",
    "h": " (did you mean HH, the hour from 00 to 23?)",
    "H": " (did you mean HH, the hour from 00 to 23?)",
    "M": " (did you mean MM, the month?)",
    "m": " (did you mean mm, the minutes?)",
    "s": " (did you mean ss, the seconds?)",
}


def pattern_to_strftime(pattern: str) -> str:
    """Translate `yyyy-MM-dd HH:mm:ss` into `%Y-%m-%d %H:%M:%S`; an unknown letter raises ValueError."""
    out = []
    pos = 0
    for match in _TOKEN_RE.finditer(pattern):
        out.append(pattern[pos : match.start()].replace("%", "%%"))
        token = match.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("%", "%%"))
        elif token in _TOKENS:
            out.append(_TOKENS[token])
        else:
            hint = _LETTER_HINTS.get(token, "")
            raise ValueError(
                f"'{token}' is not a date-time pattern letter{hint}; use yyyy MM dd HH mm ss SSS XXX, "
                "and put other letters in single quotes"
            )
        pos = match.end()
    out.append(pattern[pos:].replace("%", "%%"))
    if "%d" in out and "%M" in out and "%m" not in out and "%H" not in out:
        # `yyyy-mm-dd` reads minutes where the month belongs, and silently so.
        raise ValueError("'mm' is the minutes; write MM for the month (as in yyyy-MM-dd)")
    return "".join(out)


def zone(name: str) -> tzinfo:
    """A time zone by IANA name (`Asia/Shanghai`) or `UTC`; unknown names raise ValueError."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not a time zone name (use e.g. Asia/Shanghai or UTC)") from None


_FIXED_WIDTH = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_FIXED_RE = re.compile(r"%[YmdHMS]|%%|[^%]")


def _slicer(strf: str) -> Callable[[str], datetime | None] | None:
    """For a pattern of fixed-width numbers and literal characters (`%Y%m%d%H%M%S`, `%Y/%m/%d %H:%M`), a
    reader that slices the digits out instead of running strptime; it gives None for anything it does
    not read (a one-digit month, another shape), which then takes strptime's path, so the result and
    the errors stay strptime's."""
    pieces = _FIXED_RE.findall(strf)
    if "".join(pieces) != strf or not {"%Y", "%m", "%d"} <= set(pieces):
        return None
    numbers: dict[str, tuple[int, int]] = {}
    literals: list[tuple[int, str]] = []
    position = 0
    for piece in pieces:
        if piece in _FIXED_WIDTH:
            if piece in numbers:
                return None
            numbers[piece] = (position, position + _FIXED_WIDTH[piece])
            position += _FIXED_WIDTH[piece]
        else:
            literals.append((position, "%" if piece == "%%" else piece))
            position += 1
    length = position
    order = [numbers.get(name) for name in ("%Y", "%m", "%d", "%H", "%M", "%S")]

    def read(text: str) -> datetime | None:
        if len(text) != length or not text.isascii():
            return None
        for at, char in literals:
            if text[at] != char:
                return None
        parts: list[int] = []
        for where in order:
            if where is None:
                parts.append(0)
                continue
            digits = text[where[0] : where[1]]
            if not digits.isdigit():
                return None
            parts.append(int(digits))
        year, month, day, hour, minute, second = parts
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            return None

    return read


def _parser(fmt: str, tz: tzinfo | None) -> Callable[[Any], datetime | None]:
    """Read a vendor value as an aware datetime; naive values are taken to be in `tz` (left naive if None)."""
    strf = None if fmt in DATETIME_KEYWORDS else pattern_to_strftime(fmt)
    iso_len = _ISO_SHAPES.get(strf or "")
    sliced = _slicer(strf) if strf is not None and iso_len is None else None

    def attach(moment: datetime) -> datetime:
        return moment.replace(tzinfo=tz) if moment.tzinfo is None and tz is not None else moment

    def parse(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return attach(value)
        if isinstance(value, date):
            return attach(datetime(value.year, value.month, value.day))
        if fmt in (EPOCH, EPOCH_MS):
            number = to_number(value)
            if number is None:
                return None
            # Exact: through a float, a time in milliseconds came back one millisecond off now and then.
            seconds = number / 1000 if fmt == EPOCH_MS else number
            try:
                if abs(seconds) >= _EPOCH_LIMIT:
                    raise OverflowError
                return _EPOCH + timedelta(microseconds=int(seconds.scaleb(6).to_integral_value()))
            except (OverflowError, ValueError, ArithmeticError):
                unit = "milliseconds" if fmt == EPOCH_MS else "seconds"
                raise ValueProblem(f"{show(value)} is not a time in {unit} since 1970") from None
        if value.__class__ is not str:
            raise ValueProblem(f"expected a date-time text but found {kind_of(value)}: {show(value)}")
        text = value.strip()
        if text in ZERO_DATES:
            return None
        try:
            if strf is None:
                return attach(datetime.fromisoformat(text))
            if iso_len is not None and len(text) == iso_len and text[4] == "-" and text[7] == "-":
                return attach(datetime.fromisoformat(text))
            if sliced is not None and (moment := sliced(text)) is not None:
                return attach(moment)
            return attach(datetime.strptime(text, strf))
        except ValueError:
            expected = "an RFC 3339 date-time such as 2026-03-01T10:00:00+08:00" if strf is None else fmt
            raise ValueProblem(f"{show(value)} is not a date-time in the form {expected}") from None

    return parse


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_LIMIT = 10**12  # seconds: past the year 9999 either way
_SECOND, _MILLISECOND = timedelta(seconds=1), timedelta(milliseconds=1)


def _formatter(output: str, tz: tzinfo) -> Callable[[datetime], Any]:
    if output == RFC3339:
        return lambda moment: moment.astimezone(tz).isoformat()
    # Exact and rounded down, as Unix time is (timestamp() is a float, and int() rounds toward 0).
    if output == EPOCH:
        return lambda moment: (moment - _EPOCH) // _SECOND
    if output == EPOCH_MS:
        return lambda moment: (moment - _EPOCH) // _MILLISECOND
    strf = pattern_to_strftime(output)
    if strf in _ISO_SHAPES:
        # isoformat pads the year to 4 digits where strftime("%Y") does not, and is faster.
        width, separator = _ISO_SHAPES[strf], strf[8:9] or "T"
        return lambda moment: moment.astimezone(tz).isoformat(separator)[:width]
    return lambda moment: moment.astimezone(tz).strftime(strf)


def make_datetime(
    fmt: str, tz: str, output: str, output_tz: str, *, shortcuts: bool = True
) -> Callable[[Any], Any]:
    """A coercion from `fmt` (in zone `tz` when the value carries no offset) to `output` in `output_tz`.

    `shortcuts=False` gives the general path alone, which tests hold the shortcuts against."""
    parse = _parser(fmt, zone(tz))
    render = _formatter(output, zone(output_tz))
    # Vendor time to vendor time in the same zone needs no zone arithmetic: format the wall time as read.
    wall_clock = (
        tz == output_tz
        and output not in DATETIME_KEYWORDS
        and (fmt in DATETIME_KEYWORDS or "%z" not in pattern_to_strftime(fmt))
    )
    naive = _parser(fmt, None) if wall_clock else parse
    strf = pattern_to_strftime(output) if wall_clock else ""
    # The commonest case of all, vendor time in and the same vendor time out: check it, hand it back.
    shape = same_text_shape(fmt, tz, output, output_tz)
    same_text, separator = shape if shape is not None else (None, "")

    # Every separator in its place (positions 4, 7, 10, 13, 16: one slice of every third character):
    # fromisoformat also takes '2000-01-01 00-00:00' (midnight at offset -00:00) and other shapes.
    separators = ("--" + separator + "::")[: 2 if same_text == 10 else 5]

    def coerce(value: Any) -> Any:
        if (
            same_text is not None
            and value.__class__ is str
            and len(value) == same_text
            and value[4::3] == separators
        ):
            try:
                datetime.fromisoformat(value)
                return value
            except ValueError:
                pass  # the full path below words the error
        return convert(value)

    def convert(value: Any) -> Any:
        moment = naive(value)
        if moment is None:
            return None
        try:
            if moment.tzinfo is None:
                if strf in _ISO_SHAPES:
                    return moment.isoformat(strf[8:9] or "T")[: _ISO_SHAPES[strf]]
                return moment.strftime(strf)
            return render(moment)
        except (OverflowError, ValueError):
            raise ValueProblem(f"{show(value)} cannot be shown as {output}") from None

    if not shortcuts:
        return convert
    if same_text is not None:
        return coerce
    return _to_rfc3339(fmt, zone(tz), zone(output_tz), output, convert) or convert


class VendorTime(NamedTuple):
    """What writes a vendor time (`yyyy-MM-dd HH:mm:ss`) as RFC 3339 in the same zone without a call, for
    compiled code to inline (see _to_rfc3339): a text of the shape (length 19, `separators` at
    value[4::3]) that fromisoformat reads gets its own digits plus the suffix for the offset its wall
    time has; anything else goes to the coercion's general path."""

    separators: str
    iso_already: bool  # the separator is "T" already
    utcoffset: Callable[[datetime], timedelta | None]
    suffixes: dict[timedelta | None, str]  # offset -> what the general path writes after the seconds
    suffix_of: Callable[[datetime, str], str]  # the suffix for an offset not seen yet (remembered)


def vendor_time(fmt: str, tz: str, output: str, output_tz: str) -> VendorTime | None:
    """The inline form of make_datetime's shortcut for vendor time to RFC 3339, when it applies."""
    if output != RFC3339 or fmt in DATETIME_KEYWORDS or tz != output_tz:
        return None
    return _vendor_time(
        fmt, zone(tz), zone(output_tz), output, make_datetime(fmt, tz, output, output_tz, shortcuts=False)
    )


def _vendor_time(
    fmt: str, in_zone: tzinfo, out_zone: tzinfo, output: str, convert: Callable[[Any], Any]
) -> VendorTime | None:
    if output != RFC3339 or fmt in DATETIME_KEYWORDS or in_zone is not out_zone:
        return None
    strf = pattern_to_strftime(fmt)
    if strf not in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        return None
    separator = strf[8]
    # What the general path writes after the seconds for each offset the zone has (a handful).
    suffixes: dict[timedelta | None, str] = {}
    utcoffset = in_zone.utcoffset

    def suffix_of(moment: datetime, value: str) -> str:
        suffix: str = convert(value)[19:]
        suffixes[utcoffset(moment)] = suffix
        return suffix

    # The separators sit at positions 4, 7, 10, 13 and 16: value[4::3].
    return VendorTime("--" + separator + "::", separator == "T", utcoffset, suffixes, suffix_of)


def _to_rfc3339(
    fmt: str, in_zone: tzinfo, out_zone: tzinfo, output: str, convert: Callable[[Any], Any]
) -> Callable[[Any], Any] | None:
    """For vendor time (`yyyy-MM-dd HH:mm:ss`) to RFC 3339 in the same zone, the vendor's commonest
    conversion: a coercion that writes a valid text's own digits with the zone's offset for that wall
    time, instead of attaching the zone and formatting (replace and isoformat are ~10x the cost of the
    rest). Anything else, invalid text included, goes to `convert`, so results and errors stay its own."""
    shortcut = _vendor_time(fmt, in_zone, out_zone, output, convert)
    if shortcut is None:
        return None
    separators, iso_already, utcoffset, suffixes, suffix_of = shortcut
    fromisoformat = datetime.fromisoformat

    def to_rfc3339(value: Any) -> Any:
        if value.__class__ is str and len(value) == 19 and value[4::3] == separators:
            try:
                # Fixed-width ASCII digits in the shape checked above are all fromisoformat accepts
                # here, so the text's digits are the ones isoformat would write.
                moment = fromisoformat(value)
            except ValueError:
                return convert(value)  # words the error, or reads a vendor zero date as missing
            # A naive time's offset is the one its wall time has in the zone (fold 0), as when attached.
            suffix = suffixes.get(utcoffset(moment))
            if suffix is None:
                suffix = suffix_of(moment, value)
            # The shape check leaves the separator as the first space: replace is half an f-string's cost.
            return (value if iso_already else value.replace(" ", "T", 1)) + suffix
        return convert(value)

    return to_rfc3339


def same_text_shape(fmt: str, tz: str, output: str, output_tz: str) -> tuple[int, str] | None:
    """(length, separator) when make_datetime hands a valid vendor text back as it is (the same
    ISO-shaped pattern in and out, in the same zone), so compiled code can check the shape inline."""
    if fmt in DATETIME_KEYWORDS or output in DATETIME_KEYWORDS or tz != output_tz:
        return None
    strf = pattern_to_strftime(fmt)
    if "%z" in strf or strf != pattern_to_strftime(output) or strf not in _ISO_SHAPES:
        return None
    length = _ISO_SHAPES[strf]
    return length, strf[8] if length == 19 else ""
