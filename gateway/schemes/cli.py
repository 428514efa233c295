"""The scheme commands of `unigate`: `worker`, `scheme list|run|start|stop|delete|replay`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

from gateway.settings import Settings


def add_commands(sub: Any) -> None:
    """Add `worker` and `scheme ...` to the `unigate` parser's subcommands."""
    worker = sub.add_parser("worker", help="run a scheme worker (schedules, runs, batches)")
    worker.add_argument(
        "--concurrency", type=int, help="batches worked on at once (UNIGATE_WORKER_CONCURRENCY)"
    )
    worker.add_argument("--health-port", type=int, help="serve GET /healthz on this port")
    worker.add_argument("--health-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    scheme = sub.add_parser("scheme", help="integration schemes")
    actions = scheme.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="schemes with their last run")
    run = actions.add_parser("run", help="run a scheme here and now, with a progress bar")
    run.add_argument("name")
    run.add_argument(
        "--full", action="store_true", help="read the whole initial window, not since the checkpoint"
    )
    run.add_argument("--concurrency", type=int, default=4)
    for name, text in (
        ("start", "turn its schedule on"),
        ("stop", "turn its schedule off, stop a run"),
        ("delete", "delete it with its run history (not while it runs)"),
    ):
        actions.add_parser(name, help=text).add_argument("name")
    replay = actions.add_parser("replay", help="queue a replay of open dead letters for the workers")
    replay.add_argument("name")
    replay.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all open)")
    scheme.set_defaults(func=cmd_scheme)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import logs
    from gateway.schemes.worker import Worker, services

    logs.configure(settings.log_level)

    async def main() -> None:
        async with services(settings) as held:
            worker = Worker(held, concurrency=args.concurrency or settings.worker_concurrency)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, worker.stop)
            print(f"unigate worker {worker.name} started", file=sys.stderr, flush=True)
            health = (
                await worker.serve_health(args.health_host, args.health_port) if args.health_port else None
            )
            try:
                await worker.run()
            finally:
                if health is not None:
                    await health.cleanup()

    asyncio.run(main())
    return 0


def cmd_scheme(args: argparse.Namespace, settings: Settings) -> int:
    # A refusal (UnigateError) is said by gateway.cli.main as every command's is: "unigate: …", exit 2.
    if args.action == "run":
        return asyncio.run(_run(args, settings))
    return asyncio.run(_manage(args, settings))


async def _manage(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.schemes import service
    from gateway.store import engine as store_engine

    engine = store_engine.make_engine(settings)
    store_engine.bind(engine)
    await store_engine.start(engine)
    try:
        if args.action == "list":
            rows = await service.list_schemes(lease_seconds=settings.scheme_lease_seconds)
            for row in rows:
                last = row["last_run"] or {}
                print(
                    f"{row['name']:<28} {row['status']:<10} {row['priority']:<7} "
                    f"last run: {last.get('status', '-'):<10} {last.get('succeeded', 0)} ok, "
                    f"{last.get('failed', 0)} failed, {last.get('skipped', 0)} unchanged; "
                    f"{row['open_dead_letters']} open dead letter(s)"
                )
            # Said as the portal says it, on stderr so the list above stays one line a scheme.
            for row in rows:
                if waiting := row["waiting"]:
                    print(f"{row['name']}: run {waiting['run']} is {waiting['detail']}", file=sys.stderr)
        elif args.action == "start":
            print(json.dumps(await service.start(args.name)))
        elif args.action == "stop":
            print(json.dumps(await service.stop(args.name, lease_seconds=settings.scheme_lease_seconds)))
        elif args.action == "delete":
            await service.delete_scheme(args.name)
            print(f"scheme {args.name} deleted")
        elif args.action == "replay":
            print(f"replay queued as run {await service.replay(args.name, args.ids or None)}")
    finally:
        await store_engine.stop(engine)
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gateway import logs
    from gateway.schemes import driver, journal, service
    from gateway.schemes.worker import run_headless, services
    from gateway.store.scheme_tables import SchemeRun

    logs.configure("WARNING")
    async with services(settings, memory=True) as held:
        ident = await service.scheme_id(args.name)
        lease = settings.scheme_lease_seconds
        resume: int | None = None
        # A run whose process was killed or interrupted, with no worker to take it over: go on with it
        # here (one already asked to stop is ended, and a new run starts).
        if (left := await driver.orphan(ident, lease)) is not None:
            if left["status"] == "running":
                resume = int(left["id"])
                print(f"run {resume} was left unfinished by {left['owner']}; resuming it", file=sys.stderr)
            else:
                await driver.end_orphan(int(left["id"]), lease)
        run_id, worker = await run_headless(
            held,
            ident,
            concurrency=args.concurrency,
            options={"full": True} if args.full else {},
            run_id=resume,
        )
        working = asyncio.create_task(worker.run(schedule=False, until_run=run_id))
        interrupted = _on_interrupt(worker, working, run_id)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(f"{args.name} run {run_id}", total=None)
            while not working.done():
                counts, progress = await journal.counts(run_id), await held.queue.progress(run_id)
                done = sum(n for status, n in counts.items() if status != journal.PENDING)
                bar.update(task, completed=done, total=progress.pulled if progress.pull_done else None)
                await asyncio.wait({working}, timeout=0.3)
            with contextlib.suppress(asyncio.CancelledError):
                await working
        if working.cancelled():
            print(
                f"run {run_id} left unfinished: `unigate scheme run {args.name}` resumes it, "
                f"`unigate scheme stop {args.name}` ends it",
                file=sys.stderr,
            )
            return 130
        row = await SchemeRun.select().where(SchemeRun.id == run_id).first()
        assert row is not None
        summary = service.run_summary(row)
        print(
            f"run {run_id} {summary['status']}: {summary['succeeded']} pushed, "
            f"{summary['skipped']} unchanged, {summary['failed']} failed"
            + (f" ({summary['error']})" if summary["error"] else "")
        )
        if interrupted:
            return 130
        return 0 if summary["status"] in ("succeeded", "partial") else 1


def _on_interrupt(worker: Any, working: asyncio.Task[None], run_id: int) -> list[int]:
    """Ctrl-C (or SIGTERM) stops the run: it reads no more and finishes what it read, and ends `stopped`.
    A second one leaves at once; the run is then resumed or ended by the next `scheme run` or `stop`.
    Returns a list that holds a signal number once one came."""
    came: list[int] = []

    def interrupt(signum: int) -> None:
        came.append(signum)
        if len(came) == 1:
            print(
                f"\nstopping run {run_id}: the records already read are finished first "
                "(Ctrl-C again to leave now)",
                file=sys.stderr,
                flush=True,
            )
            asyncio.get_running_loop().create_task(worker.driver.stop_run(run_id))
        else:
            working.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum)
    return came
