"""The table each running `unigate worker` beats in, so a page can say why a queued run does not move:
no worker has been seen for a while."""

from __future__ import annotations

from piccolo.columns import Boolean, DoublePrecision, Serial, Varchar
from piccolo.table import Table


class SchemeWorker(Table, tablename="unigate_scheme_worker"):
    """One `unigate worker` process: when it started and when it was last seen (epoch seconds)."""

    id = Serial(primary_key=True)
    name = Varchar(length=160, unique=True)  # "<host>-<pid>", as the worker names itself
    started_at = DoublePrecision(default=0.0)
    seen_at = DoublePrecision(default=0.0)
    stopped = Boolean(default=False)  # stopped cleanly: gone at once, not a lease later


WORKER_TABLES: list[type[Table]] = [SchemeWorker]
