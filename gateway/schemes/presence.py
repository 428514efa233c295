"""Which `unigate worker` processes are alive: each beats its row in unigate_scheme_worker while it runs,
so the portal and the admin API can say why a queued run does not move (no worker has been seen)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from piccolo.query.functions.aggregate import Max
from piccolo.querystring import QueryString

from gateway.store.worker_tables import SchemeWorker

log = logging.getLogger("unigate.worker")
FORGET_AFTER = 7 * 86400  # rows of workers silent this long are deleted when a worker starts


async def beat(name: str, now: float | None = None) -> None:
    """Say this worker is alive now (its row is made at its first beat)."""
    now = time.time() if now is None else now
    seen = (
        await SchemeWorker.update({SchemeWorker.seen_at: now, SchemeWorker.stopped: False})
        .where(SchemeWorker.name == name)
        .returning(SchemeWorker.id)
    )
    if not seen:
        await SchemeWorker.insert(SchemeWorker(name=name, started_at=now, seen_at=now, stopped=False))


async def gone(name: str) -> None:
    """A clean stop: the worker is gone at once, not a lease later; its last beat stays as last seen."""
    await SchemeWorker.update({SchemeWorker.stopped: True}).where(SchemeWorker.name == name)


async def forget_old(now: float | None = None) -> None:
    now = time.time() if now is None else now
    await SchemeWorker.delete().where(SchemeWorker.seen_at < now - FORGET_AFTER)


async def keep_beating(name: str, interval: float) -> None:
    """Beat every `interval` seconds until cancelled; a failed beat (the database away) is tried again."""
    with contextlib.suppress(Exception):
        await forget_old()
    while True:
        try:
            await beat(name)
        except Exception:
            log.warning("the worker heartbeat could not be written", exc_info=True)
        await asyncio.sleep(interval)


async def last_seen(lease_seconds: float, now: float | None = None) -> tuple[bool, float | None]:
    """(whether a worker is alive now, when any worker was last seen: epoch seconds or None if never)."""
    now = time.time() if now is None else now
    # One row however many workers ever beat: the last beat of any, and the last of those not stopped.
    running = QueryString("CASE WHEN {} THEN NULL ELSE {} END", SchemeWorker.stopped, SchemeWorker.seen_at)
    row = await SchemeWorker.select(
        Max(SchemeWorker.seen_at, alias="latest"), Max(running, alias="running")
    ).first()
    latest, beating = (row["latest"], row["running"]) if row else (None, None)
    return beating is not None and beating > now - lease_seconds, latest


AGE_UNITS = ((86400, "d"), (3600, "h"), (60, "min"))  # the largest that fits; seconds below a minute


def age(seconds: float) -> dict[str, Any]:
    """A silence as a person says it, in whole units: {"n": 5, "unit": "min"} (s, min, h or d). The pages
    and their scripts say these two in their language ("{n} min"), so the rule is written only here."""
    seconds = max(int(seconds), 0)
    for size, unit in AGE_UNITS:
        if seconds >= size:
            return {"n": seconds // size, "unit": unit}
    return {"n": seconds, "unit": "s"}


def waiting(
    run: dict[str, Any], seen: tuple[bool, float | None], lease_seconds: float, now: float | None = None
) -> dict[str, Any] | None:
    """Why `run` does not move, when the reason is that no worker runs: a queued run, or one in progress
    whose driver went silent, while no worker is alive to take it. None otherwise."""
    now = time.time() if now is None else now
    alive, latest = seen
    if alive:
        return None
    status = run["status"]
    stale = status in ("running", "stopping") and (run.get("heartbeat_at") or 0.0) < now - lease_seconds
    if status != "queued" and not stale:
        return None
    silent = None if latest is None else max(now - latest, 0.0)
    said = None if silent is None else age(silent)
    seen_for = "yet" if said is None else f"for {said['n']} {said['unit']}"
    return {
        "reason": "no_worker",
        "worker_seen_at": None if latest is None else datetime.fromtimestamp(latest, UTC).isoformat(),
        "silent_seconds": None if silent is None else int(silent),
        "silent_for": said,  # the pages' words for it
        "detail": f"waiting for a worker: none has been seen {seen_for}; start `unigate worker`",
    }
