"""A run from start to end: claim it, read the source in pages into the queue (holding back while the
queue is above its bound), wait until every batch is accounted for, then close it and advance the
checkpoint. A run's owner keeps a heartbeat; when it stops (a killed worker), another worker takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from gateway.errors import UnigateError
from gateway.schemes import journal
from gateway.schemes.model import DEFAULT_TIMEZONE, following_slot, next_after
from gateway.schemes.queue import UNREACHABLE, Stopped, WorkQueue, until_answered
from gateway.schemes.runner import Batch, Context, Contexts, with_retries
from gateway.store.scheme_tables import DeadLetter, Scheme, SchemeRun

log = logging.getLogger("unigate.schemes")
T = TypeVar("T")

ACTIVE = ("queued", "running", "stopping")


@dataclass(frozen=True)
class Tuning:
    """How a worker paces runs (from settings)."""

    queue_bound: int = 20  # batches waiting or in work, across all schemes
    lease_seconds: float = 15.0  # a run whose owner has not beaten for this long is taken over
    poll_seconds: float = 0.5


async def create_run(scheme_id: int, trigger: str, options: dict[str, Any] | None = None) -> int:
    row = await Scheme.select(Scheme.priority).where(Scheme.id == scheme_id).first()
    priority = row["priority"] if row else "normal"
    rows = await SchemeRun.insert(
        SchemeRun(
            scheme=scheme_id, trigger=trigger, status="queued", priority=priority, options=options or {}
        )
    )
    return int(rows[0]["id"])


async def claim(run_id: int, owner: str, lease_seconds: float) -> bool:
    """Take a queued run (its scheme's lock first) or a running one whose owner went silent."""
    run = (
        await SchemeRun.select(SchemeRun.scheme, SchemeRun.status, SchemeRun.heartbeat_at, SchemeRun.options)
        .where(SchemeRun.id == run_id)
        .output(load_json=True)
        .first()
    )
    if run is None or run["status"] not in ACTIVE:
        return False
    now = time.time()
    if run["heartbeat_at"] > now - lease_seconds:
        return False
    locked = (
        await Scheme.update({Scheme.active_run: run_id})
        .where(Scheme.id == run["scheme"], Scheme.active_run.is_null())
        .returning(Scheme.id)
    )
    if not locked:
        holder = await Scheme.select(Scheme.active_run).where(Scheme.id == run["scheme"]).first()
        if holder is None or holder["active_run"] != run_id:
            return False
    status = "stopping" if run["status"] == "stopping" else "running"
    taken = (
        await SchemeRun.update(
            {SchemeRun.owner: owner, SchemeRun.heartbeat_at: now, SchemeRun.status: status}
        )
        .where(
            SchemeRun.id == run_id,
            SchemeRun.heartbeat_at == run["heartbeat_at"],
            # A run stopped between the read and here stays stopped.
            SchemeRun.status == run["status"],
        )
        .returning(SchemeRun.id)
    )
    if taken and run["status"] == "queued":
        # The run keeps the definition it starts with, in every worker that takes its batches, also one
        # that takes it over: an edit made meanwhile is for the next run.
        scheme = (
            await Scheme.select(Scheme.definition)
            .where(Scheme.id == run["scheme"])
            .output(load_json=True)
            .first()
        )
        options = {**(run["options"] or {}), "definition": scheme["definition"] if scheme else None}
        await SchemeRun.update({SchemeRun.started_at: datetime.now(UTC), SchemeRun.options: options}).where(
            SchemeRun.id == run_id
        )
    return bool(taken)


async def claimable(lease_seconds: float) -> list[int]:
    """Runs a worker could take now: stale running ones first, then queued ones by priority."""
    stale = await SchemeRun.select(SchemeRun.id).where(
        SchemeRun.status.is_in(["running", "stopping"]), SchemeRun.heartbeat_at < time.time() - lease_seconds
    )
    queued = (
        await SchemeRun.select(SchemeRun.id, SchemeRun.priority, SchemeRun.scheme)
        .where(SchemeRun.status == "queued")
        .order_by(SchemeRun.id)
    )
    busy = {row["id"] for row in await Scheme.select(Scheme.id).where(Scheme.active_run.is_not_null())}
    order = {"high": 0, "normal": 1, "low": 2}
    waiting = sorted(
        (row for row in queued if row["scheme"] not in busy),
        key=lambda row: (order.get(row["priority"], 1), row["id"]),
    )
    return [row["id"] for row in stale] + [row["id"] for row in waiting]


async def schedule_due(now: float | None = None) -> list[int]:
    """Queue a run for every enabled scheme whose schedule fired; moving next_run_at is a compare-and-set,
    so of several workers exactly one queues it."""
    now = time.time() if now is None else now
    created = []
    rows = (
        await Scheme.select(Scheme.id, Scheme.definition, Scheme.next_run_at)
        .where(
            Scheme.enabled == True  # noqa: E712 (a column comparison, not a truth test)
        )
        .output(load_json=True)
    )
    for row in rows:
        definition = row["definition"] or {}
        schedule = definition.get("schedule")
        if not schedule:
            continue
        due = row["next_run_at"]
        if due is not None and due > now:
            continue
        timezone = definition.get("timezone") or DEFAULT_TIMEZONE
        following = (
            next_after(schedule, now, timezone)
            if due is None
            else following_slot(schedule, due, now, timezone)
        )
        condition = Scheme.next_run_at.is_null() if due is None else Scheme.next_run_at == due
        moved = (
            await Scheme.update({Scheme.next_run_at: following})
            .where(Scheme.id == row["id"], condition, Scheme.enabled == True)  # noqa: E712
            .returning(Scheme.id)
        )
        if not moved or due is None:
            continue  # another worker fired it, or the schedule just started: its first time is `following`
        active = await SchemeRun.exists().where(
            SchemeRun.scheme == row["id"], SchemeRun.status.is_in(list(ACTIVE))
        )
        if active:
            continue
        run_id = await create_run(row["id"], "schedule")
        # A stop that came between the compare-and-set and the insert missed this run: stop it here.
        still = await Scheme.exists().where(Scheme.id == row["id"], Scheme.enabled == True)  # noqa: E712
        if not still:
            await SchemeRun.update(
                {SchemeRun.status: "stopped", SchemeRun.finished_at: datetime.now(UTC)}
            ).where(SchemeRun.id == run_id, SchemeRun.status == "queued")
            continue
        created.append(run_id)
    return created


async def orphan(scheme_id: int, lease_seconds: float) -> dict[str, Any] | None:
    """The scheme's run in progress when nothing drives it any more (its owner was killed or interrupted
    and no worker took it over); None when there is none, or its owner is alive."""
    scheme = await Scheme.select(Scheme.active_run).where(Scheme.id == scheme_id).first()
    if scheme is None or scheme["active_run"] is None:
        return None
    run = (
        await SchemeRun.select(SchemeRun.id, SchemeRun.status, SchemeRun.owner, SchemeRun.heartbeat_at)
        .where(SchemeRun.id == scheme["active_run"])
        .first()
    )
    if run is None or run["status"] not in ("running", "stopping"):
        return None
    return run if run["heartbeat_at"] < time.time() - lease_seconds else None


async def end_orphan(run_id: int, lease_seconds: float) -> bool:
    """End a run nobody drives as stopped, with its counts, and free its scheme; False if it has an owner
    again (a worker took it over first: that one stops it)."""
    ended = (
        await SchemeRun.update(
            {
                SchemeRun.status: "stopped",
                # An owner that was only slow finds the run is no longer its own at its next beat.
                SchemeRun.owner: "",
                SchemeRun.finished_at: datetime.now(UTC),
                SchemeRun.error: "stopped while nothing was driving it (its process had ended)",
            }
        )
        .where(
            SchemeRun.id == run_id,
            SchemeRun.status.is_in(["running", "stopping"]),
            SchemeRun.heartbeat_at < time.time() - lease_seconds,
        )
        .returning(SchemeRun.scheme)
    )
    if not ended:
        return False
    await SchemeRun.update(_tally(await journal.counts(run_id))).where(SchemeRun.id == run_id)
    await _release(ended[0]["scheme"], run_id)
    return True


def _tally(counts: dict[str, int]) -> dict[Any, int]:
    """A run's count columns from its records' outcomes; a record still pending counts as failed."""
    return {
        SchemeRun.total: sum(counts.values()),
        SchemeRun.succeeded: counts.get(journal.SUCCESS, 0),
        SchemeRun.failed: counts.get(journal.FAILED, 0) + counts.get(journal.PENDING, 0),
        SchemeRun.skipped: counts.get(journal.SKIPPED, 0),
    }


async def _release(scheme: int, run_id: int) -> None:
    """The scheme may run again: unless another run holds it already."""
    await Scheme.update({Scheme.active_run: None}).where(Scheme.id == scheme, Scheme.active_run == run_id)


class Driver:
    """Drives the runs one process owns."""

    def __init__(self, owner: str, queue: WorkQueue, contexts: Contexts, tuning: Tuning) -> None:
        self.owner = owner
        self.queue = queue
        self.contexts = contexts
        self.tuning = tuning
        self._beats: dict[int, _Heartbeat] = {}

    async def stop_run(self, run_id: int) -> None:
        """Ask a run this process drives to stop now: read no more, finish the batches already read."""
        await SchemeRun.update({SchemeRun.status: "stopping"}).where(
            SchemeRun.id == run_id, SchemeRun.status == "running"
        )
        if (beat := self._beats.get(run_id)) is not None:
            beat.stopping = True  # at once, not at the next heartbeat

    async def drive(self, run_id: int) -> str:
        """Run a claimed run to its end; returns its final status ('' when ownership was lost)."""
        run = await SchemeRun.select().where(SchemeRun.id == run_id).output(load_json=True).first()
        assert run is not None
        beat = _Heartbeat(run_id, self.owner, self.tuning.lease_seconds)
        beat.stopping = run["status"] == "stopping"  # taken over after a stop: read no further
        beat.start()
        self._beats[run_id] = beat
        error = ""
        try:
            context = await self.contexts.get(run_id, run["scheme"])
            if run["trigger"] == "replay":
                await self._replay(run, context, beat)
            else:
                await self._pull(run, context, beat)
            await self._wait_done(run_id, beat)
        except _Lost:
            return ""
        except UnigateError as exc:
            error = exc.detail
            log.warning("scheme run failed", extra={"run": run_id, "error": error})
            # Read no further; the batches already queued are still taken to their end.
            with contextlib.suppress(_Lost):
                await self._put(run_id, run["priority"], [], None, True, 0, beat)
                await self._wait_done(run_id, beat)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("scheme run failed", extra={"run": run_id})
        finally:
            self._beats.pop(run_id, None)
            await beat.stop()
        if beat.lost:
            return ""
        return await self._finish(run_id, run, error, beat)

    async def _pull(self, run: dict[str, Any], context: Context, beat: _Heartbeat) -> None:
        definition = context.definition
        source = definition.source
        connector = context.connector(source.connection)
        run_id = run["id"]
        window_from, window_to = run["window_from"], run["window_to"]
        if window_to is None:
            window_to = time.time()
            incremental = source.incremental
            since = None if run["options"].get("full") else await journal.checkpoint(context.scheme_id)
            if since is not None and incremental.by == "modified":
                window_from = max(since - incremental.lookback_seconds, 0)
            else:
                window_from = window_to - incremental.initial_days * 86400
            await SchemeRun.update(
                {SchemeRun.window_from: window_from, SchemeRun.window_to: window_to}
            ).where(SchemeRun.id == run_id)
        progress = await _answered(lambda: self.queue.progress(run_id), beat)
        cursor, done = progress.cursor, progress.pull_done
        if cursor is None and not done and run["pulled"]:
            # Taken over with a queue that did not survive its owner: the window is read again from its
            # start, so the count starts again too (records pushed already are found unchanged).
            await SchemeRun.update({SchemeRun.pulled: 0}).where(SchemeRun.id == run_id)
        since_at = datetime.fromtimestamp(window_from, UTC)
        until_at = datetime.fromtimestamp(window_to, UTC)
        size = definition.target.batch_size
        while not done:
            beat.check()
            if beat.stopping:
                await self._put(run_id, run["priority"], [], cursor, True, 0, beat)
                return
            await self._room(beat)
            if beat.stopping:  # asked to stop while waiting for room: read nothing more
                continue
            page, _ = await with_retries(
                definition.retry,
                functools.partial(
                    connector.pull, source.operation, source.params, since_at, until_at, cursor
                ),
            )
            bodies = [
                msgspec.json.encode(
                    Batch(run=run_id, scheme=context.scheme_id, records=page.records[i : i + size])
                )
                for i in range(0, len(page.records), size)
            ]
            cursor, done = page.cursor, page.cursor is None
            await self._put(
                run_id,
                run["priority"],
                bodies,
                cursor,
                done,
                len(page.records),
                beat,
                self.tuning.queue_bound,
            )
            if page.records:
                await SchemeRun.update({SchemeRun.pulled: SchemeRun.pulled + len(page.records)}).where(
                    SchemeRun.id == run_id
                )

    async def _replay(self, run: dict[str, Any], context: Context, beat: _Heartbeat) -> None:
        progress = await _answered(lambda: self.queue.progress(run["id"]), beat)
        if progress.pull_done:
            return
        ids = [int(i) for i in run["options"].get("dead_letters") or []]
        query = DeadLetter.select(DeadLetter.source_record).where(
            DeadLetter.scheme == context.scheme_id, DeadLetter.status == "open"
        )
        if ids:
            query = query.where(DeadLetter.id.is_in(ids))
        records = [row["source_record"] for row in await query.order_by(DeadLetter.id).output(load_json=True)]
        size = context.definition.target.batch_size
        bodies = [
            msgspec.json.encode(Batch(run=run["id"], scheme=context.scheme_id, records=records[i : i + size]))
            for i in range(0, len(records), size)
        ]
        # Replays are small and their letters are read once: one transaction, whatever the bound.
        await self._put(run["id"], run["priority"], bodies, None, True, len(records), beat)
        await SchemeRun.update({SchemeRun.pulled: len(records)}).where(SchemeRun.id == run["id"])

    async def _room(self, beat: _Heartbeat) -> None:
        """Backpressure: do not read more while the queue is at its bound (or Redis is away)."""
        while True:
            try:
                if await self.queue.depth() < self.tuning.queue_bound:
                    return
            except UNREACHABLE:
                pass  # said by the queue; asked again while the run is still ours and not stopped
            beat.check()
            if beat.stopping:
                return
            await asyncio.sleep(0.05)

    async def _put(
        self,
        run_id: int,
        priority: str,
        bodies: list[bytes],
        cursor: str | None,
        done: bool,
        pulled: int,
        beat: _Heartbeat,
        bound: int | None = None,
    ) -> None:
        """Enqueue a page, going round while the queue is above `bound` or Redis is away, for as long as
        the run is ours. Every try carries one name, so a try Redis carried out after we gave up on it is
        not done again (gateway/schemes/queue.py _PUT)."""
        name = uuid.uuid4().hex
        while True:
            try:
                if await self.queue.put(
                    run_id,
                    priority,
                    bodies,
                    cursor=cursor,
                    pull_done=done,
                    pulled=pulled,
                    name=name,
                    bound=bound,
                ):
                    return
            except UNREACHABLE:
                pass
            beat.check()
            await asyncio.sleep(0.05)

    async def _wait_done(self, run_id: int, beat: _Heartbeat) -> None:
        while True:
            try:
                progress = await self.queue.progress(run_id)
                if progress.pull_done and progress.done >= progress.enqueued:
                    return
            except UNREACHABLE:
                pass
            beat.check()
            await asyncio.sleep(0.05)

    async def _finish(self, run_id: int, run: dict[str, Any], error: str, beat: _Heartbeat) -> str:
        stopped = beat.stopping
        counts = await journal.counts(run_id)
        failed = counts.get(journal.FAILED, 0) + counts.get(journal.PENDING, 0)
        unavailable = await journal.unavailable(run_id) if failed and not (error or stopped) else 0
        if unavailable:
            # Not refused by the target but never judged by it: not accounted for, so the checkpoint stays
            # and the next run reads these records again.
            error = (
                f"{unavailable} record(s) were not delivered because a backend was unavailable or "
                "rate-limiting after every retry; the next run tries them again"
            )
        through = counts.get(journal.SUCCESS, 0) + counts.get(journal.SKIPPED, 0)
        # Every record failed (none pushed, none already there): the run failed, though it ran to its end.
        all_failed = bool(failed) and not through and not (error or stopped)
        if all_failed:
            error = f"all {failed} record(s) failed; they are in the dead letters"
        if error:
            status = "failed"
        elif stopped:
            status = "stopped"
        else:
            status = "partial" if failed else "succeeded"
        fresh = await SchemeRun.select(SchemeRun.window_to).where(SchemeRun.id == run_id).first()
        window_to = fresh["window_to"] if fresh else None
        # Failed records are in the dead-letter store, so they are accounted for: the window is done
        # (also when all of them failed, refused by the target rather than left unjudged).
        ran_out = status in ("succeeded", "partial") or (all_failed and not unavailable)
        if ran_out and run["trigger"] != "replay" and window_to is not None:
            await journal.advance_checkpoint(run["scheme"], window_to, run_id)
        await SchemeRun.update(
            {
                SchemeRun.status: status,
                SchemeRun.error: error,
                **_tally(counts),
                SchemeRun.finished_at: datetime.now(UTC),
            }
        ).where(SchemeRun.id == run_id)
        await _release(run["scheme"], run_id)
        await _answered(lambda: self.queue.forget(run_id), beat)
        log.info("scheme run finished", extra={"run": run_id, "status": status, **counts})
        return status


class _Lost(Exception):
    """Another worker owns the run now."""


async def _answered(call: Callable[[], Awaitable[T]], beat: _Heartbeat) -> T:
    """A one-off queue call, tried until Redis answers while the run is still ours (else _Lost)."""
    try:
        return await until_answered(call, beat.gone)
    except Stopped:
        raise _Lost() from None


class _Heartbeat:
    """Beats for a run while it is driven; notices a stop request and a lost lease."""

    def __init__(self, run_id: int, owner: str, lease_seconds: float) -> None:
        self.run_id = run_id
        self.owner = owner
        self.interval = max(lease_seconds / 3, 0.2)
        self.gone = asyncio.Event()  # another worker owns the run now
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    @property
    def lost(self) -> bool:
        return self.gone.is_set()

    def check(self) -> None:
        if self.lost:
            raise _Lost()

    async def _beat(self) -> None:
        while True:
            try:
                rows = (
                    await SchemeRun.update({SchemeRun.heartbeat_at: time.time()})
                    .where(SchemeRun.id == self.run_id, SchemeRun.owner == self.owner)
                    .returning(SchemeRun.status)
                )
                if not rows:
                    self.gone.set()
                    return
                # Once asked to stop, stopping for good (a stop set here may be ahead of this read).
                self.stopping = self.stopping or rows[0]["status"] == "stopping"
            except Exception:
                log.exception("scheme run heartbeat failed", extra={"run": self.run_id})
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def release(run_ids: list[int], owner: str) -> None:
    """On a clean shutdown: let other workers take these runs over at once."""
    if run_ids:
        await SchemeRun.update({SchemeRun.heartbeat_at: 0.0}).where(
            SchemeRun.id.is_in(run_ids), SchemeRun.owner == owner
        )
