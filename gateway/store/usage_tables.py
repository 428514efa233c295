"""Usage tables written by usage metering (policies/metering.py), in batches off the hot path, and read by
the portal: daily calls, errors and latency per consumer x API, and a short masked log of recent requests.
"""

from __future__ import annotations

from piccolo.columns import Date, Float, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from gateway.store.tables import Consumer

# Upper bounds (ms) of the latency buckets, one column each (`le_10` ... `le_10000`, then `le_inf`);
# a percentile is read from their counts (the portal's p50/p95).
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKET_COLUMNS = (*(f"le_{bound}" for bound in LATENCY_BOUNDS_MS), "le_inf")


class UsageDaily(Table, tablename="unigate_usage_daily"):
    """Calls of one consumer to one unified API on one day (in UNIGATE_USAGE_TIMEZONE)."""

    id = Serial(primary_key=True)
    bucket = Varchar(length=200, unique=True)  # "<consumer id>:<api>:<day>", what nodes add up into
    consumer = ForeignKey(references=Consumer, on_delete=OnDelete.cascade, null=False)
    api = Varchar(length=40)
    day = Date(index=True)
    calls = Integer(default=0)  # every answered request, refused ones included
    errors = Integer(default=0)  # answers of status 400 or more
    rejected = Integer(default=0)  # refused by a limit: 429 rate_limited / quota_exceeded, 503 overloaded
    # let through by the rate limits and quotas (what a quota counts; later refusals such as 503 included):
    # where a quota counter that is missing, or newly set, starts (policies/quota_seed.py)
    admitted = Integer(default=0)
    latency_ms_sum = Float(default=0.0)
    le_10 = Integer(default=0)
    le_25 = Integer(default=0)
    le_50 = Integer(default=0)
    le_100 = Integer(default=0)
    le_250 = Integer(default=0)
    le_500 = Integer(default=0)
    le_1000 = Integer(default=0)
    le_2500 = Integer(default=0)
    le_5000 = Integer(default=0)
    le_10000 = Integer(default=0)
    le_inf = Integer(default=0)


class RequestSample(Table, tablename="unigate_request_sample"):
    """One recent request of a consumer, personal data masked; only the newest few per consumer are kept."""

    id = Serial(primary_key=True)
    consumer = ForeignKey(references=Consumer, on_delete=OnDelete.cascade, null=False)
    api = Varchar(length=40)
    connection = Varchar(length=100, default="")
    method = Varchar(length=10)
    path = Varchar(length=500)
    query = Text(default="")
    status = Integer()
    code = Varchar(length=60, default="")  # the problem code of an error answer
    detail = Text(default="")
    duration_ms = Float(default=0.0)
    request_id = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


USAGE_TABLES: list[type[Table]] = [UsageDaily, RequestSample]
