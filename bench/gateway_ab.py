"""Two versions of the gateway measured at the same moment: this working tree against a git revision.

    .venv/bin/python bench/gateway_ab.py REV [--rounds 4] [--duration 5] [--connections 16]

On a small machine that other work shares, req/s from runs taken minutes apart swing by ±20 %, more than
most changes are worth. Here both gateways (one worker each) serve the same recorded Wangdiantong answer
(nginx), with the same Redis and the same key, each under its own wrk, in the same seconds: whatever else
the machine does falls on both. Each round prints both sides' req/s and CPU per request (counted from
/proc over each gateway's process group), and the end the mean CPU per request and the ratio. REV is
checked out into a temporary git worktree, which is removed afterwards; the database is migrated and
seeded by this tree, so REV must read the same schema.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._load import LoadResult, have_wrk, run_wrk
from bench.gateway_chain import bench_setup, check, group_cpu_seconds
from tests.services import free_port, run_process

ROOT = Path(__file__).resolve().parent.parent
PATH = "/v1/stockouts?limit=5"


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out beside this tree, with this tree's front-end assets linked in."""
    folder = Path(tempfile.mkdtemp(prefix="unigate-ab-")) / "tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(folder), revision], check=True
    )
    try:
        if (ROOT / "node_modules").exists():
            (folder / "node_modules").symlink_to(ROOT / "node_modules")
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False)


@contextmanager
def served(tree: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """`unigate serve` from `tree` (python -m from its folder imports that tree's packages)."""
    port = free_port()
    with run_process(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=tree,
        log_path=log,
        ready_port=port,
        timeout=30,
    ) as proc:
        yield f"http://127.0.0.1:{port}{PATH}", proc.pid


def round_at_once(
    sides: list[tuple[str, int]], headers: dict[str, str], duration: float, connections: int
) -> list[tuple[LoadResult, float]]:
    """Each side under its own wrk, started together; (load, CPU us per answered request) per side."""
    results: dict[int, LoadResult] = {}

    def load(index: int, url: str) -> None:
        results[index] = run_wrk(url, headers=headers, connections=connections, duration=duration)

    before = [group_cpu_seconds(pgid) for _, pgid in sides]
    started = time.perf_counter()
    threads = [threading.Thread(target=load, args=(i, url)) for i, (url, _) in enumerate(sides)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    out = []
    for i, (_, pgid) in enumerate(sides):
        answered = results[i].rps * elapsed
        used = group_cpu_seconds(pgid) - before[i]
        out.append((results[i], used / answered * 1e6 if answered else float("nan")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("revision", help="the git revision to compare this working tree against")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16, help="per side")
    args = parser.parse_args()
    if not have_wrk():
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="unigate-ab-")))
        other = stack.enter_context(worktree(args.revision))
        _upstream, _proxy, env, key = stack.enter_context(bench_setup(workdir))
        headers = {"Authorization": f"Bearer {key}"}
        names = ("this tree", args.revision)
        sides = [
            stack.enter_context(served(tree, env, workdir / f"side{i}.log"))
            for i, tree in enumerate((ROOT, other))
        ]
        for url, _ in sides:
            check(url, headers)
        round_at_once(sides, headers, 2.0, args.connections)  # warm-up: connections, caches, memos
        per_side: list[list[float]] = [[], []]
        print(f"GET {PATH}, both sides at once, wrk -c {args.connections} -d {args.duration:.0f}s each")
        print(f"  round  {names[0]:>24}  {names[1][:24]:>24}    (req/s, CPU us per request)")
        for number in range(1, args.rounds + 1):
            figures = round_at_once(sides, headers, args.duration, args.connections)
            for i, (_, per_request) in enumerate(figures):
                per_side[i].append(per_request)
            cells = [f"{load.rps:>11,.0f} {per_request:>9,.0f} us" for load, per_request in figures]
            print(f"  {number:>5}  {cells[0]:>24}  {cells[1]:>24}")
        means = [sum(values) / len(values) for values in per_side]
        print(
            f"mean CPU per request: this tree {means[0]:,.0f} us, {args.revision} {means[1]:,.0f} us: "
            f"this tree costs {means[0] / means[1]:.2f}x what {args.revision} costs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
