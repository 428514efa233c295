"""What a run writes down: per-record results, delivery state (deduplication), dead letters, checkpoints.

Every write is an upsert on a natural slot (`<run>:<key>`, `<scheme>:<key>`), so a batch processed
again after a crash overwrites its own rows instead of adding to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway.store.scheme_tables import Checkpoint, DeadLetter, Delivery, RecordResult

PENDING, SUCCESS, FAILED, SKIPPED = "pending", "success", "failed", "skipped"
# Marks a dead letter whose backend was down or rate-limiting to the last attempt: its run does not
# advance the checkpoint, so the next run reads the record again (and closes the letter when it lands).
UNAVAILABLE = "unavailable"


class Outcome(msgspec.Struct, kw_only=True):
    """One record's result in a run."""

    key: str
    status: str
    content_hash: str = ""
    attempts: int = 0
    answer: dict[str, Any] = {}
    error: str = ""


class Letter(msgspec.Struct, kw_only=True):
    """A record that failed for good, with all that a replay needs."""

    key: str
    stage: str
    source_record: dict[str, Any]
    mapped_record: dict[str, Any] | None
    error: dict[str, Any]


class State(msgspec.Struct, frozen=True):
    delivered_hash: str = ""
    pending_hash: str = ""


def _slot(owner: int, key: str) -> str:
    return f"{owner}:{key}"


async def deliveries(scheme: int, keys: Iterable[str]) -> dict[str, State]:
    slots = {_slot(scheme, key): key for key in keys}
    if not slots:
        return {}
    rows = await Delivery.select(Delivery.slot, Delivery.delivered_hash, Delivery.pending_hash).where(
        Delivery.slot.is_in(list(slots))
    )
    return {slots[row["slot"]]: State(row["delivered_hash"], row["pending_hash"]) for row in rows}


async def mark_pending(scheme: int, hashes: dict[str, str]) -> None:
    """Written before a push: the backend may hold this content from now on."""
    if not hashes:
        return
    now = time.time()
    rows = [
        Delivery(slot=_slot(scheme, key), scheme=scheme, pending_hash=digest, updated_at=now)
        for key, digest in hashes.items()
    ]
    await Delivery.insert(*rows).on_conflict(
        target=Delivery.slot, action="DO UPDATE", values=[Delivery.pending_hash, Delivery.updated_at]
    )


async def settle(scheme: int, delivered: dict[str, str], not_delivered: Iterable[str]) -> None:
    """After a push: what the backend now holds, and intents that did not land."""
    now = time.time()
    if delivered:
        rows = [
            Delivery(
                slot=_slot(scheme, key), scheme=scheme, delivered_hash=digest, pending_hash="", updated_at=now
            )
            for key, digest in delivered.items()
        ]
        await Delivery.insert(*rows).on_conflict(
            target=Delivery.slot,
            action="DO UPDATE",
            values=[Delivery.delivered_hash, Delivery.pending_hash, Delivery.updated_at],
        )
    failed = [_slot(scheme, key) for key in not_delivered]
    if failed:
        await Delivery.update({Delivery.pending_hash: "", Delivery.updated_at: now}).where(
            Delivery.slot.is_in(failed)
        )


async def save_results(run: int, scheme: int, outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    now = time.time()
    rows = [
        RecordResult(
            slot=_slot(run, outcome.key),
            run=run,
            scheme=scheme,
            record_key=outcome.key,
            content_hash=outcome.content_hash,
            status=outcome.status,
            attempts=outcome.attempts,
            answer=outcome.answer,
            error=outcome.error,
            updated_at=now,
        )
        for outcome in outcomes
    ]
    await RecordResult.insert(*rows).on_conflict(
        target=RecordResult.slot,
        action="DO UPDATE",
        values=[
            RecordResult.content_hash,
            RecordResult.status,
            RecordResult.attempts,
            RecordResult.answer,
            RecordResult.error,
            RecordResult.updated_at,
        ],
    )


async def dead_letter(scheme: int, run: int, letters: list[Letter]) -> None:
    """File (or re-file) records that failed for good; one open letter per scheme and record key."""
    if not letters:
        return
    now = datetime.now(UTC)
    existing = {
        row["slot"]: row["attempts"]
        for row in await DeadLetter.select(DeadLetter.slot, DeadLetter.attempts).where(
            DeadLetter.slot.is_in([_slot(scheme, letter.key) for letter in letters])
        )
    }
    rows = []
    for letter in letters:
        slot = _slot(scheme, letter.key)
        rows.append(
            DeadLetter(
                slot=slot,
                scheme=scheme,
                run=run,
                record_key=letter.key,
                stage=letter.stage,
                source_record=letter.source_record,
                mapped_record=letter.mapped_record,
                error=letter.error,
                status="open",
                attempts=existing.get(slot, 0) + 1,
                updated_at=now,
            )
        )
    await DeadLetter.insert(*rows).on_conflict(
        target=DeadLetter.slot,
        action="DO UPDATE",
        values=[
            DeadLetter.run,
            DeadLetter.stage,
            DeadLetter.source_record,
            DeadLetter.mapped_record,
            DeadLetter.error,
            DeadLetter.status,
            DeadLetter.attempts,
            DeadLetter.updated_at,
        ],
    )


async def resolve_letters(scheme: int, keys: list[str]) -> None:
    """Records that went through after all: their letters are closed."""
    if keys:
        await DeadLetter.update(
            {DeadLetter.status: "resolved", DeadLetter.updated_at: datetime.now(UTC)}
        ).where(DeadLetter.slot.is_in([_slot(scheme, key) for key in keys]), DeadLetter.status == "open")


async def unavailable(run: int) -> int:
    """Open dead letters of a run whose backend was down or rate-limiting to the last attempt."""
    rows = await DeadLetter.select(DeadLetter.error).where(
        DeadLetter.run == run, DeadLetter.status == "open"
    ).output(load_json=True)  # fmt: skip
    return sum(1 for row in rows if isinstance(row["error"], dict) and row["error"].get(UNAVAILABLE))


async def checkpoint(scheme: int) -> float | None:
    row = await Checkpoint.select(Checkpoint.value).where(Checkpoint.scheme == scheme).first()
    return float(row["value"]) if row else None


async def advance_checkpoint(scheme: int, value: float, run: int) -> None:
    await Checkpoint.insert(
        Checkpoint(scheme=scheme, value=value, run=run, updated_at=datetime.now(UTC))
    ).on_conflict(
        target=Checkpoint.scheme,
        action="DO UPDATE",
        values=[Checkpoint.value, Checkpoint.run, Checkpoint.updated_at],
    )


async def counts(run: int) -> dict[str, int]:
    rows = await RecordResult.raw(
        "SELECT status, COUNT(*) AS n FROM unigate_record_result WHERE run = {} GROUP BY status", run
    )
    return {row["status"]: int(row["n"]) for row in rows}
