"""What a scheme is: source, enrichment steps, mapping (by version), target, schedule, priority, retries.

Checked once, when saved, with errors naming the field at fault (`source.connection`), like every input.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from gateway.errors import InvalidParameter

PRIORITIES = ("high", "normal", "low")
Priority = Literal["high", "normal", "low"]
_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")
DEFAULT_TIMEZONE = "Asia/Shanghai"
# A record is retried at most this often, waiting at most this long between tries: a run must end.
MAX_ATTEMPTS = 20
MAX_BACKOFF_SECONDS = 3600.0


class Incremental(msgspec.Struct, frozen=True, kw_only=True):
    """Read only what changed: since the checkpoint (less a look-back, for late writes) until now."""

    by: Literal["modified", "none"] = "modified"
    lookback_seconds: int = 300
    initial_days: int = 30  # the first run reads this far back


class Source(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    operation: str
    params: dict[str, Any] = {}
    incremental: Incremental = Incremental()


class Enrichment(msgspec.Struct, frozen=True, kw_only=True):
    """One lookup per record (kuaidi100 tracking by logistics_no), its answer stored under `into`.

    `inputs` is a mapping-spec `fields:` block read from the record (so it may use lookups on `tables`);
    `copy` copies record fields into the answer (kuaidi100Data.tid); a record whose `when` field is
    empty is not looked up. `on_error`: keep (store the error under `into`, go on) or fail (dead letter).
    """

    connection: str
    operation: str
    into: str
    inputs: dict[str, Any]
    tables: dict[str, dict[str, Any]] = {}
    copy: dict[str, str] = {}
    when: str | None = None
    on_error: Literal["keep", "fail"] = "keep"


class MappingRef(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int


class Target(msgspec.Struct, frozen=True, kw_only=True):
    connection: str
    operation: str
    params: dict[str, Any] = {}
    batch_size: int = 50


class Retry(msgspec.Struct, frozen=True, kw_only=True):
    """Retryable failures (rate limits, timeouts, unreachable) are tried this often, backing off."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0


class SchemeDefinition(msgspec.Struct, frozen=True, kw_only=True):
    source: Source
    mapping: MappingRef
    target: Target
    enrich: list[Enrichment] = []
    schedule: str | None = None  # a cron expression ("*/5 * * * *") or an interval ("every 30s")
    # The calendar a cron expression is read in: "0 2 * * *" is 02:00 where the shops are, not in UTC.
    timezone: str = DEFAULT_TIMEZONE
    retry: Retry = Retry()


def parse_definition(raw: Any) -> SchemeDefinition:
    """A definition from plain data; a problem names the field at fault."""
    try:
        definition = msgspec.convert(raw, SchemeDefinition)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        raise InvalidParameter(field, f"scheme definition: {exc}") from None
    check_definition(definition)
    return definition


def _field_of(message: str) -> str:
    # msgspec says "... - at `$.source.connection`" or "Object missing required field `mapping`"
    at = re.search(r"at `\$\.?([^`]*)`", message)
    missing = re.search(r"missing required field `([^`]+)`", message)
    path = at.group(1) if at else ""
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return re.sub(r"\[(\d+)\]", r".\1", path) or "definition"


def check_definition(definition: SchemeDefinition) -> None:
    if not 1 <= definition.target.batch_size <= 1000:
        raise InvalidParameter("target.batch_size", "target.batch_size must be between 1 and 1000")
    if not 1 <= definition.retry.attempts <= MAX_ATTEMPTS:
        raise InvalidParameter("retry.attempts", f"retry.attempts must be between 1 and {MAX_ATTEMPTS}")
    for name in ("backoff_seconds", "max_backoff_seconds"):
        if not 0 <= getattr(definition.retry, name) <= MAX_BACKOFF_SECONDS:
            raise InvalidParameter(
                f"retry.{name}", f"retry.{name} must be between 0 and {MAX_BACKOFF_SECONDS:g} seconds"
            )
    if definition.source.incremental.lookback_seconds < 0:
        raise InvalidParameter("source.incremental.lookback_seconds", "lookback must not be negative")
    if definition.source.incremental.initial_days < 1:
        # A first window ending before it starts would read nothing, and say nothing about it.
        raise InvalidParameter("source.incremental.initial_days", "initial_days must be at least 1")
    try:
        ZoneInfo(definition.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParameter(
            "timezone", f"timezone {definition.timezone!r} is not an IANA name like Asia/Shanghai"
        ) from None
    if definition.schedule:
        next_after(definition.schedule, 0.0, definition.timezone)
    for n, step in enumerate(definition.enrich):
        if not step.into or "." in step.into:
            raise InvalidParameter(f"enrich.{n}.into", "enrich.into is one top-level field name")


def _interval_seconds(schedule: str) -> int | None:
    """An interval schedule ('every 30s') in seconds; None for cron."""
    interval = _INTERVAL.match(schedule.strip())
    if interval is None:
        return None
    seconds = int(interval.group(1)) * {"s": 1, "m": 60, "h": 3600}[interval.group(2)]
    if seconds < 1:
        raise InvalidParameter("schedule", "an interval must be at least 1 second")
    return seconds


def next_after(schedule: str, after: float, timezone: str = DEFAULT_TIMEZONE) -> float:
    """The next time (epoch seconds) a schedule fires after `after`; cron is read in `timezone`."""
    text = schedule.strip()
    seconds = _interval_seconds(text)
    if seconds is not None:
        return after + seconds
    from croniter import croniter

    if not croniter.is_valid(text):
        raise InvalidParameter(
            "schedule", f"schedule {schedule!r} is neither a cron expression nor an interval like 'every 30s'"
        )
    start = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return float(croniter(text, start).get_next(float))


def following_slot(schedule: str, due: float, now: float, timezone: str = DEFAULT_TIMEZONE) -> float:
    """The slot after the one due at `due` that fired at `now`: an interval counts from its slots, not from
    when a worker got round to firing, so it does not drift; slots missed while no worker ran are skipped."""
    seconds = _interval_seconds(schedule)
    if seconds is None:
        return next_after(schedule, now, timezone)
    missed = int(max(now - due, 0) // seconds)
    return due + (missed + 1) * seconds


def check_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise InvalidParameter("priority", f"priority must be one of {', '.join(PRIORITIES)}")
    return priority
