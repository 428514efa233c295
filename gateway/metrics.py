"""Prometheus metrics of one gateway process, served at `/metrics`; every policy records into these.

Labels are bounded by configuration (routes, consumers, connections), never by request data.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Seconds; from a cache hit (sub-millisecond) to a backend walking several vendor windows.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "unigate_requests",
    "Unified API requests answered, by route template, consumer, connection and status",
    ["route", "method", "consumer", "connection", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "unigate_request_duration_seconds",
    "Time from the policy chain receiving a unified API request to its last response byte",
    ["route", "consumer", "connection"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
LIMITER_REJECTIONS = Counter(
    "unigate_limiter_rejections",
    "Requests refused by a limiting policy (rate limit, quota, admission), by policy and consumer",
    ["policy", "consumer"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "unigate_breaker_state",
    "Circuit breaker of each connection on this node: 1 for its current state, 0 for the others",
    ["connection", "state"],
    registry=REGISTRY,
)
UPSTREAM_CALLS = Counter(
    "unigate_upstream_calls",
    "Calls to backends by outcome (ok, vendor_error, rate_limited, http_error, transport_error, timeout, "
    "breaker_open, busy)",
    ["connection", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_RETRIES = Counter(
    "unigate_upstream_retries",
    "Backend calls retried after a retryable failure",
    ["connection"],
    registry=REGISTRY,
)
ADMISSION_IN_FLIGHT = Gauge(
    "unigate_admission_in_flight", "Unified API requests admitted and running on this node", registry=REGISTRY
)
ADMISSION_QUEUE_DEPTH = Gauge(
    "unigate_admission_queue_depth", "Requests waiting for admission on this node", registry=REGISTRY
)
CACHE_LOOKUPS = Counter(
    "unigate_cache_lookups",
    "Response cache lookups by API and result (hit, miss)",
    ["api", "result"],
    registry=REGISTRY,
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
    """The exposition text and its content type."""
    return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST
