"""How fast a scheme's run history and a run's records answer with a month of history: 43,200 runs (one
a minute for 30 days) and a run of 2,000 records, against a real `unigate serve` on SQLite.

Baseline, measured in the same run: the first page (the newest runs, the first records). The ratio says
what paging deep into the history costs against it (keyset paging: about the same).

    .venv/bin/python bench/scheme_pages.py [--runs 43200] [--records 2000] [--requests 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import free_port, run_process  # noqa: E402

PASSWORD = "bench password 1"


def _env(var_dir: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "UNIGATE_VAR_DIR": var_dir,
        "UNIGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "UNIGATE_LOG_LEVEL": "WARNING",
    }


async def seed(env: dict[str, str], runs: int, records: int) -> tuple[list[int], int]:
    """A scheme with `runs` finished runs, the newest with `records` per-record results, and an admin."""
    from gateway.demo import REFERENCE_ENDS, install_reference_scheme
    from gateway.schemes import service
    from gateway.settings import load_settings
    from gateway.store import engine as store_engine
    from gateway.store.crypto import Vault
    from gateway.store.scheme_tables import RecordResult, SchemeRun
    from portal.services import accounts
    from portal.services.principal import CLI

    settings = load_settings(env)
    store_engine.bind(store_engine.make_engine(settings))
    # Never called: the history is written here, not run.
    nowhere = dict.fromkeys(REFERENCE_ENDS, "http://127.0.0.1:9")
    names = {"source": "src", "target": "dst", "tracking": "kd"}
    scheme = await install_reference_scheme(Vault(settings.secret_key), nowhere, names)
    # A second scheme run a few times before the busy one started: its few runs sit under all the others.
    quiet = await service.put_scheme(
        "quiet", (await service.get_scheme(service.REFERENCE_SCHEME))["definition"]
    )
    await SchemeRun.insert(
        *(SchemeRun(scheme=quiet, trigger="manual", status="succeeded") for _ in range(30))
    )
    start = datetime.now(UTC) - timedelta(minutes=runs)
    ids: list[int] = []
    for first in range(0, runs, 500):
        rows = [
            SchemeRun(
                scheme=scheme, trigger="schedule", status="succeeded", pulled=3, total=3, succeeded=3,
                started_at=start + timedelta(minutes=n), finished_at=start + timedelta(minutes=n, seconds=1),
            )
            for n in range(first, min(first + 500, runs))
        ]  # fmt: skip
        ids.extend(int(row["id"]) for row in await SchemeRun.insert(*rows))
    big = ids[-1]
    for first in range(0, records, 500):
        await RecordResult.insert(
            *(
                RecordResult(
                    slot=f"{big}:R{n:06d}", run=big, scheme=scheme, record_key=f"R{n:06d}", status="success",
                    attempts=1, answer={"code": 0},
                )
                for n in range(first, min(first + 500, records))
            )
        )  # fmt: skip
    await accounts.create_account(CLI, "bench-admin", PASSWORD, role="admin")
    return ids, big


def _timed(http: httpx.Client, path: str, count: int) -> float:
    """Median milliseconds of `count` GETs of `path` (each must answer 200)."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=43200)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir:
        env = _env(var_dir)
        subprocess.run(
            [sys.executable, "-m", "gateway.cli", "migrate"], env={**os.environ, **env}, check=True
        )
        ids, big = asyncio.run(seed(env, args.runs, args.records))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (
            run_process(
                [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
                env=env,
                log_path=Path(var_dir) / "serve.log",
                ready_url=f"{url}/healthz",
            ),
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            login = http.get("/portal/login").text
            csrf = login.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
            signed = http.post(
                "/portal/login", data={"username": "bench-admin", "password": PASSWORD, "_csrf_token": csrf}
            )
            assert signed.status_code == 303, signed.text
            name = "stockouts-to-wdt-target"
            record_ids: list[int] = []
            cursor: int | None = 0
            while cursor is not None:
                page = http.get(
                    f"/admin/api/runs/{big}/records", params={"limit": 1000, "after": cursor}
                ).json()
                record_ids.extend(record["id"] for record in page["records"])
                cursor = page["next"]
            last_cursor = record_ids[-101]  # the last page of 100 comes after it
            cases = {
                "run history, newest page (baseline)": f"/admin/schemes/{name}/run-history",
                "run history, oldest page": f"/admin/schemes/{name}/run-history?before={ids[20]}",
                "scheme page, oldest page": f"/admin/schemes/{name}?before={ids[20]}",
                "run history of a scheme with 30 runs": "/admin/schemes/quiet/run-history",
                "records, first page (baseline)": f"/admin/api/runs/{big}/records?limit=100",
                "records, last page": f"/admin/api/runs/{big}/records?limit=100&after={last_cursor}",
            }
            for path in cases.values():  # warm up: imports, template compilation, the database's cache
                _timed(http, path, 3)
            results = {label: _timed(http, path, args.requests) for label, path in cases.items()}
    print(f"{args.runs} runs, a run of {args.records} records, {args.requests} requests each (median ms):")
    history, records_base = (
        results["run history, newest page (baseline)"],
        results["records, first page (baseline)"],
    )
    for label, ms in results.items():
        base = history if label.startswith(("run history", "scheme page")) else records_base
        print(f"  {label:<40} {ms:7.1f} ms   x{ms / base:.2f} of baseline")


if __name__ == "__main__":
    main()
