"""Usage and analytics read from what metering writes (gateway/store/usage_tables.py): calls, errors,
limiter rejections and latency percentiles per day, per consumer and API; the masked recent-request log."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.store.usage_tables import BUCKET_COLUMNS, LATENCY_BOUNDS_MS, RequestSample, UsageDaily
from portal.services import apps
from portal.services.principal import Principal

TIMEZONE = "Asia/Shanghai"


def _today(timezone: str = TIMEZONE) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def percentile(buckets: list[int], share: float) -> float | None:
    """The latency (ms, a bucket's upper bound) under which `share` of calls finished; None without calls."""
    total = sum(buckets)
    if total == 0:
        return None
    needed = share * total
    seen = 0
    for bound, count in zip((*LATENCY_BOUNDS_MS, float("inf")), buckets, strict=True):
        seen += count
        if seen >= needed:
            return float(bound) if bound != float("inf") else float(LATENCY_BOUNDS_MS[-1])
    return float(LATENCY_BOUNDS_MS[-1])


class _Tally:
    def __init__(self) -> None:
        self.calls = self.errors = self.rejected = 0
        self.buckets = [0] * len(BUCKET_COLUMNS)

    def add(self, row: dict[str, Any]) -> None:
        self.calls += row["calls"]
        self.errors += row["errors"]
        self.rejected += row["rejected"]
        for n, column in enumerate(BUCKET_COLUMNS):
            self.buckets[n] += row[column]

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "rejected": self.rejected,
            "p50_ms": percentile(self.buckets, 0.50),
            "p95_ms": percentile(self.buckets, 0.95),
        }


async def _rows(since: date, consumer: int | None = None, api: str | None = None) -> list[dict[str, Any]]:
    query = UsageDaily.select(
        UsageDaily.consumer,
        UsageDaily.consumer.name.as_alias("consumer_name"),
        UsageDaily.api,
        UsageDaily.day,
        UsageDaily.calls,
        UsageDaily.errors,
        UsageDaily.rejected,
        *(getattr(UsageDaily, column) for column in BUCKET_COLUMNS),
    ).where(UsageDaily.day >= since)
    if consumer is not None:
        query = query.where(UsageDaily.consumer == consumer)
    if api:
        query = query.where(UsageDaily.api == api)
    return list(await query)


def _day(row: dict[str, Any]) -> date:
    # SQLite hands dates back as text, PostgreSQL as dates.
    return row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))


def _series(rows: list[dict[str, Any]], since: date, days: int) -> list[dict[str, Any]]:
    """One point per day, days without calls included, so charts have a true time axis."""
    per_day: dict[date, _Tally] = defaultdict(_Tally)
    for row in rows:
        per_day[_day(row)].add(row)
    return [
        {"day": (since + timedelta(days=n)).isoformat(), **per_day[since + timedelta(days=n)].summary()}
        for n in range(days)
    ]


async def overview(days: int = 7, timezone: str = TIMEZONE) -> dict[str, Any]:
    """Admin dashboard: traffic, errors, latency, top consumers and limiter rejections."""
    since = _today(timezone) - timedelta(days=days - 1)
    rows = await _rows(since)
    total = _Tally()
    per_consumer: defaultdict[int, _Tally] = defaultdict(_Tally)
    per_api: defaultdict[str, _Tally] = defaultdict(_Tally)
    names: dict[int, str] = {}
    for row in rows:
        total.add(row)
        per_consumer[row["consumer"]].add(row)
        per_api[row["api"]].add(row)
        names[row["consumer"]] = row["consumer_name"]
    top = sorted(per_consumer.items(), key=lambda item: item[1].calls, reverse=True)[:10]
    return {
        "since": since.isoformat(),
        "totals": total.summary(),
        "series": _series(rows, since, days),
        "top_consumers": [{"id": cid, "name": names[cid], **tally.summary()} for cid, tally in top],
        "apis": [{"api": api, **tally.summary()} for api, tally in sorted(per_api.items())],
    }


async def app_usage(me: Principal, app_id: int, days: int = 14, timezone: str = TIMEZONE) -> dict[str, Any]:
    """A developer's view of one app: per API, daily series and today's / this month's calls."""
    await apps.get_app(me, app_id)  # ownership
    today = _today(timezone)
    since = min(today - timedelta(days=days - 1), today.replace(day=1))
    rows = await _rows(since, consumer=app_id)
    by_api: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_api[row["api"]].append(row)
    chart_since = today - timedelta(days=days - 1)
    result: dict[str, Any] = {}
    for api, api_rows in sorted(by_api.items()):
        result[api] = {
            "today": sum(r["calls"] for r in api_rows if _day(r) == today),
            "month": sum(r["calls"] for r in api_rows if _day(r) >= today.replace(day=1)),
            "series": _series([r for r in api_rows if _day(r) >= chart_since], chart_since, days),
        }
    return {"since": chart_since.isoformat(), "apis": result}


async def recent_requests(me: Principal, app_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The app's latest requests as metering stored them (personal data already masked)."""
    await apps.get_app(me, app_id)
    return list(
        await RequestSample.select(
            RequestSample.created_at,
            RequestSample.api,
            RequestSample.connection,
            RequestSample.method,
            RequestSample.path,
            RequestSample.query,
            RequestSample.status,
            RequestSample.code,
            RequestSample.duration_ms,
            RequestSample.request_id,
        )
        .where(RequestSample.consumer == app_id)
        .order_by(RequestSample.id, ascending=False)
        .limit(limit)
    )
