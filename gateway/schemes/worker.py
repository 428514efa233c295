"""`unigate worker`: schedules runs, drives the runs it claims, and processes batches from the queue.

Several workers share one database and one Redis: the schedule fires once (compare-and-set), a run
has one driver at a time (a heartbeat lease), and batches are spread by the Redis consumer group.
`run_headless` is the same machinery in one process for `unigate scheme run NAME`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from aiohttp import web
from redis.asyncio import Redis

from gateway import redis_client
from gateway.connectors.base import Connector
from gateway.errors import Conflict
from gateway.runtime import Runtime
from gateway.schemes import driver, presence
from gateway.schemes.driver import Driver, Tuning
from gateway.schemes.queue import (
    TAKE_WAIT_SECONDS,
    Claimed,
    MemoryQueue,
    RedisQueue,
    Stopped,
    WorkQueue,
    pause,
    until_answered,
)
from gateway.schemes.runner import Batch, Contexts, process
from gateway.settings import Settings
from gateway.store import engine as store_engine
from gateway.store.crypto import Vault
from gateway.store.snapshot import SnapshotHolder
from gateway.trouble import Trouble
from gateway.upstream import Upstream

log = logging.getLogger("unigate.worker")
# Runs one worker drives at once (each is mostly waiting on its source); batches are the real work.
MAX_DRIVEN = 4


@dataclass
class Services:
    """What a worker process holds: the store, the config snapshot, the way out, the queue."""

    settings: Settings
    snapshots: SnapshotHolder
    upstream: Upstream
    runtime: Runtime
    redis: Redis | None
    queue: WorkQueue

    @property
    def connector(self) -> Callable[[str], Connector]:
        return self.runtime.connector

    def tuning(self) -> Tuning:
        s = self.settings
        return Tuning(
            queue_bound=s.scheme_queue_bound,
            lease_seconds=s.scheme_lease_seconds,
            poll_seconds=s.scheme_poll_seconds,
        )


def _upstream(settings: Settings, redis: Redis | None) -> Upstream:
    # Built as the gateway builds it, so a connection's backend caps are shared with the gateway's calls.
    from policies.backend import LocalCaps, RedisCaps

    return Upstream(
        timeout_seconds=settings.upstream_timeout_seconds,
        retries=settings.upstream_retries,
        caps=RedisCaps(redis) if redis is not None else LocalCaps(),
    )


@contextlib.asynccontextmanager
async def services(settings: Settings, *, memory: bool = False) -> AsyncIterator[Services]:
    """Start what a worker needs; `memory` forces the in-process queue (a headless run)."""
    engine = store_engine.make_engine(settings)
    store_engine.bind(engine)
    await store_engine.start(engine)
    # Every call bounded, so a frozen Redis cannot stall the worker for ever (nor its stop): by
    # UNIGATE_REDIS_TIMEOUT plus the queue's blocking read, which waits in Redis up to TAKE_WAIT_SECONDS on
    # purpose. One client for the queue and the backend caps: a cap's call waiting that much longer for a
    # frozen Redis (once a second, policies/fallback.py) costs a batch little.
    redis = redis_client.connect(settings, longest_block=TAKE_WAIT_SECONDS)
    snapshots = SnapshotHolder(Vault(settings.secret_key), settings.config_poll_seconds)
    upstream = _upstream(settings, redis)
    await snapshots.start()
    queue: WorkQueue = (
        RedisQueue(redis, claim_idle_seconds=settings.scheme_claim_idle_seconds)
        if redis is not None and not memory
        else MemoryQueue()
    )
    try:
        yield Services(settings, snapshots, upstream, Runtime(snapshots, upstream), redis, queue)
    finally:
        await snapshots.stop()
        await upstream.close()
        if redis is not None:
            await redis.aclose()
        await store_engine.stop(engine)


class Worker:
    def __init__(self, services: Services, *, concurrency: int, name: str | None = None) -> None:
        self.services = services
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.contexts = Contexts(services.connector)
        self.driver = Driver(self.name, services.queue, self.contexts, services.tuning())
        self.driven: dict[int, asyncio.Task[str]] = {}
        self.stopping = asyncio.Event()
        self.batches = 0
        # A database or Redis that is away: said once, then once a minute (and shown on /healthz).
        self.dispatch_trouble = Trouble(log, "scheme dispatch")
        self.queue_trouble = Trouble(log, "reading the scheme queue")

    async def run(self, *, schedule: bool = True, drive: bool = True, until_run: int | None = None) -> None:
        """Work until `stop()` (or, with `until_run`, until that run has finished). `drive=False`: only
        process batches, claim no runs."""
        processors = [asyncio.create_task(self._process_loop(n)) for n in range(self.concurrency)]
        # Only a worker that takes any queued run says it is there: pages tell a run waiting for none.
        beating = (
            asyncio.create_task(
                presence.keep_beating(self.name, max(self.services.settings.scheme_lease_seconds / 3, 0.2))
            )
            if drive and until_run is None
            else None
        )
        try:
            if drive:
                await self._dispatch_loop(schedule, until_run)
            else:
                await self.stopping.wait()
        finally:
            self.stopping.set()
            if beating is not None:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
                with contextlib.suppress(Exception):  # a database that is away must not hold the stop up
                    await asyncio.wait_for(presence.gone(self.name), 5)
            await asyncio.gather(*processors, return_exceptions=True)
            for task in self.driven.values():
                task.cancel()
            await asyncio.gather(*self.driven.values(), return_exceptions=True)
            await driver.release(list(self.driven), self.name)

    def stop(self) -> None:
        self.stopping.set()

    async def serve_health(self, host: str, port: int) -> web.AppRunner:
        """GET /healthz: this worker's name, the runs it drives and the batches it finished."""

        async def healthz(request: web.Request) -> web.Response:
            failing = {
                trouble.what: datetime.fromtimestamp(trouble.since, UTC).isoformat()
                for trouble in (self.dispatch_trouble, self.queue_trouble)
                if trouble.since is not None
            }
            # Still 200 while the database or Redis is away: a restart would not bring them back, and the
            # worker picks up by itself when they return; `failing` says what and since when.
            body = {
                "status": "degraded" if failing else "ok",
                "worker": self.name,
                "driving": sorted(self.driven),
                "batches": self.batches,
                "failing": failing,
            }
            return web.json_response(body)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    async def _dispatch_loop(self, schedule: bool, until_run: int | None) -> None:
        tuning = self.services.tuning()
        while not self.stopping.is_set():
            try:
                if schedule:
                    await driver.schedule_due()
                await self._claim_runs(tuning, until_run)
            except Exception:
                self.dispatch_trouble.failed()
            else:
                self.dispatch_trouble.ok()
            for run_id, task in list(self.driven.items()):
                if task.done():
                    del self.driven[run_id]
                    if run_id == until_run:
                        return
            await pause(tuning.poll_seconds, self.stopping)

    async def _claim_runs(self, tuning: Tuning, until_run: int | None) -> None:
        candidates = [until_run] if until_run is not None else await driver.claimable(tuning.lease_seconds)
        for run_id in candidates:
            if len(self.driven) >= MAX_DRIVEN or run_id in self.driven:
                continue
            if await driver.claim(run_id, self.name, tuning.lease_seconds):
                log.info("driving scheme run", extra={"run": run_id, "worker": self.name})
                self.driven[run_id] = asyncio.create_task(self.driver.drive(run_id))

    async def _process_loop(self, n: int) -> None:
        consumer = f"{self.name}-{n}"
        queue = self.services.queue
        while not self.stopping.is_set():
            try:
                claimed = await until_answered(lambda: queue.take(consumer, TAKE_WAIT_SECONDS), self.stopping)
            except Stopped:
                return
            except Exception:
                self.queue_trouble.failed()
                await pause(1, self.stopping)
                continue
            self.queue_trouble.ok()
            if claimed is not None:
                await self._handle(consumer, claimed)

    async def _handle(self, consumer: str, claimed: Claimed) -> None:
        keeper = asyncio.create_task(self._keep(consumer, claimed))
        try:
            for attempt in range(3):
                try:
                    batch = msgspec.json.decode(claimed.body, type=Batch)
                    context = await self.contexts.get(batch.run, batch.scheme)
                    await process(context, batch)
                    if await self._ack(claimed):
                        self.batches += 1
                    return
                except Exception:
                    # The database or queue went away mid-batch: every write is an upsert, so try again.
                    log.exception("processing a scheme batch failed", extra={"run": claimed.run})
                    await asyncio.sleep(1 + attempt)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _ack(self, claimed: Claimed) -> bool:
        """Acknowledge a processed batch, waiting for a Redis that is away rather than processing the batch
        again. Told to stop meanwhile, the worker leaves it pending (False): it is not lost, another worker
        claims it once it has sat idle, and its records, pushed already, are found unchanged."""
        try:
            await until_answered(lambda: self.services.queue.ack(claimed), self.stopping)
        except Stopped:
            return False
        return True

    async def _keep(self, consumer: str, claimed: Claimed) -> None:
        interval = max(self.services.settings.scheme_claim_idle_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.services.queue.keep(consumer, claimed)


async def run_headless(
    services: Services,
    scheme_id: int,
    *,
    concurrency: int,
    options: dict[str, object] | None = None,
    run_id: int | None = None,
) -> tuple[int, Worker]:
    """Claim a run of one scheme here (a new one unless `run_id` names a queued one); the caller then
    awaits `worker.run(until_run=...)`."""
    from gateway.store.scheme_tables import Scheme, SchemeRun

    if run_id is None:
        active = await Scheme.select(Scheme.active_run).where(Scheme.id == scheme_id).first()
        if active and active["active_run"]:
            raise Conflict(
                f"the scheme is running already (run {active['active_run']}); wait for it or stop it"
            )
        run_id = await driver.create_run(scheme_id, "cli", dict(options or {}))
    worker = Worker(services, concurrency=concurrency, name=f"cli-{socket.gethostname()}-{os.getpid()}")
    if not await driver.claim(run_id, worker.name, services.settings.scheme_lease_seconds):
        await SchemeRun.update(
            {SchemeRun.status: "failed", SchemeRun.error: "the scheme was running already"}
        ).where(SchemeRun.id == run_id, SchemeRun.status == "queued")
        raise Conflict("the scheme started running elsewhere at the same moment; try again")
    worker.driven[run_id] = asyncio.create_task(worker.driver.drive(run_id))
    return run_id, worker
