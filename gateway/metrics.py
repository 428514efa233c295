"""Prometheus metrics of the gateway, served at `/metrics`; every policy records into these.

Labels are bounded by configuration (routes, consumers, connections), never by request data.

With one worker everything lives in this process. With several (`UNIGATE_WORKERS` > 1, `unigate serve`
sets PROMETHEUS_MULTIPROC_DIR before the workers start), the counters, histograms and breaker states are
written to files the workers share, so any worker's /metrics answers for all of them; breaker states
carry the worker's `pid` (a breaker is per worker). What is read at scrape time from live objects
(admission in flight and waiting, process, GC) is the answering worker's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
REGISTRY = CollectorRegistry(auto_describe=True)  # this process's own
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
# Where the request-path metrics register: here, or (several workers) nowhere, their values going to
# the shared files that MultiProcessCollector reads at scrape time.
SHARED: CollectorRegistry | None = None if MULTIPROCESS else REGISTRY

# Seconds; from a cache hit (sub-millisecond) to a backend walking several vendor windows.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "unigate_requests",
    "Unified API requests answered, by route template, consumer, connection and status",
    ["route", "method", "consumer", "connection", "status"],
    registry=SHARED,
)
REQUEST_SECONDS = Histogram(
    "unigate_request_duration_seconds",
    "Time from the policy chain receiving a unified API request to its last response byte",
    ["route", "consumer", "connection"],
    buckets=LATENCY_BUCKETS,
    registry=SHARED,
)
LIMITER_REJECTIONS = Counter(
    "unigate_limiter_rejections",
    "Requests refused by a limiting policy (rate limit, quota, admission), by policy and consumer",
    ["policy", "consumer"],
    registry=SHARED,
)
BREAKER_STATE = Gauge(
    "unigate_breaker_state",
    "Circuit breaker of each connection on this node: 1 for its current state, 0 for the others",
    ["connection", "state"],
    registry=SHARED,
    multiprocess_mode="liveall",  # one series per live worker (label pid): each has its own breakers
)
UPSTREAM_CALLS = Counter(
    "unigate_upstream_calls",
    "Calls to backends by outcome (ok, vendor_error, rate_limited, http_error, transport_error, timeout, "
    "breaker_open, busy)",
    ["connection", "outcome"],
    registry=SHARED,
)
UPSTREAM_SECONDS = Histogram(
    "unigate_upstream_duration_seconds",
    "Time of each attempt at a backend call, from sending the request to its whole answer (or failure)",
    ["connection"],
    buckets=LATENCY_BUCKETS,
    registry=SHARED,
)
UPSTREAM_RETRIES = Counter(
    "unigate_upstream_retries",
    "Backend calls retried after a retryable failure",
    ["connection"],
    registry=SHARED,
)


class _Admission(Collector):
    """Admission's in-flight count and queue depth, read from the policy when /metrics is scraped (not
    written on every request); a collector rather than Gauge.set_function, which would leave a value
    file per worker in multiprocess mode."""

    def __init__(self) -> None:
        self.read: tuple[Callable[[], int], Callable[[], int]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.read is None:
            return
        in_flight, waiting = self.read
        yield GaugeMetricFamily(
            "unigate_admission_in_flight",
            "Unified API requests admitted and running on this node (worker)",
            value=in_flight(),
        )
        yield GaugeMetricFamily(
            "unigate_admission_queue_depth",
            "Requests waiting for admission on this node (worker)",
            value=waiting(),
        )


_ADMISSION = _Admission()
REGISTRY.register(_ADMISSION)


def watch_admission(in_flight: Callable[[], int], waiting: Callable[[], int]) -> None:
    """Report these two readings as this process's admission gauges."""
    _ADMISSION.read = (in_flight, waiting)


CACHE_LOOKUPS = Counter(
    "unigate_cache_lookups",
    "Response cache lookups by API and result (hit, miss)",
    ["api", "result"],
    registry=SHARED,
)

BREAKER_STATES = ("closed", "open", "half_open")


# The labelled children, by label values: `.labels(...)` validates and locks on every call (a few us);
# a dict lookup does not. Bounded as the labels are (configuration, not request data).
_requests: dict[tuple[str, str, str, str, int], tuple[Any, Any]] = {}
_rejections: dict[tuple[str, str], Any] = {}
_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up in a dictionary after the first time: for the hot path."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


# The backend time of the request being served: the policy chain gives each unified API request a fresh
# one-item list (a holder, so the tasks a request spawns add to the same one); a call outside a request,
# a scheme run's, finds None. The access log reports it as `upstream_ms`.
request_upstream_seconds: ContextVar[list[float] | None] = ContextVar("request_upstream", default=None)


def upstream_attempt(connection: str, seconds: float) -> None:
    """One attempt at a backend call took `seconds`: observed by connection, and added to the request's."""
    child(UPSTREAM_SECONDS, connection).observe(seconds)
    spent = request_upstream_seconds.get()
    if spent is not None:
        spent[0] += seconds


def upstream_call(connection: str, outcome: str) -> None:
    """Count one backend call by outcome (`ok`, `vendor_error`, ...; see UPSTREAM_CALLS)."""
    child(UPSTREAM_CALLS, connection, outcome).inc()


def request_answered(
    route: str, method: str, consumer: str, connection: str, status: int, seconds: float
) -> None:
    """Count one unified API request and its duration (from the chain receiving it to its last byte)."""
    key = (route, method, consumer, connection, status)
    children = _requests.get(key)
    if children is None:
        children = _requests[key] = (
            REQUESTS.labels(route, method, consumer, connection, str(status)),
            REQUEST_SECONDS.labels(route, consumer, connection),
        )
    children[0].inc()
    children[1].observe(seconds)


def limiter_rejected(policy: str, consumer: str) -> None:
    """Count one request refused by `policy` (`rate_limit`, `quota`, `admission`, ...)."""
    child = _rejections.get((policy, consumer))
    if child is None:
        child = _rejections[policy, consumer] = LIMITER_REJECTIONS.labels(policy, consumer)
    child.inc()


def breaker_changed(connection: str, state: str) -> None:
    for name in BREAKER_STATES:
        BREAKER_STATE.labels(connection, name).set(1 if name == state else 0)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: every worker's shared metrics, then this process's."""
    if not MULTIPROCESS:
        return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    shared = CollectorRegistry()
    MultiProcessCollector(shared)
    return _generate_latest(shared) + _generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_started() -> None:
    """Drop the live-only series of workers that died without stopping (SIGKILL, the OOM killer): their
    breaker states would otherwise be shown, as if still live, until the node restarts."""
    if not MULTIPROCESS:
        return
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            # Workers replaced together may clear the same dead pid's files at once.
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(pid)
        except PermissionError:  # alive, another user's
            pass


def worker_stopped() -> None:
    """Drop this worker's live-only series (breaker states) from the shared files as it stops."""
    if MULTIPROCESS:
        mark_process_dead(os.getpid())
