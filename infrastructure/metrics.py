"""Prometheus metrics of genhub, and the small hooks that feed them.

Series (all prefixed `genhub_`):
- graphql_operations_total{operation,outcome} and graphql_operation_duration_seconds{operation}
- active_subscriptions (call `subscription_opened()` / `subscription_closed()`, or `track_subscription()`)
- task_queue_depth{state}: `waiting` (enqueued, not yet delivered) and `pending` (delivered, not acked)
- tasks_total{task,outcome}, task_duration_seconds{task}, tasks_running (TaskMetricsMiddleware)
- provider_call_duration_seconds{provider,call}, provider_errors_total{provider,call,code}
  (InstrumentedProvider, infrastructure/provider_metrics.py)
- credit_moves_total{kind}, credit_moved_total{kind} (counted when the ledger row's transaction commits,
  infrastructure/ledger_metrics.py)
- rate_limit_fallbacks_total (infrastructure/ratelimit_fallback.py)
- provider_circuit_open{provider} (1 open or half-open), provider_recent_error_ratio{provider},
  provider_running{provider} (set from the shared state when /metrics is scraped, `observe_provider_health`);
  circuit_fallbacks_total (infrastructure/circuit_breaker.py)
- gc_paced_collections_total, gc_freezes_total, gc_reclaims_total, gc_last_reclaim_seconds,
  gc_reclaim_at_blocks: the API process's collection pacer (infrastructure/gc_tuning.py), set after
  each of its middle ticks (`observe_collections`)
- persisted_documents_total{outcome}: requests naming a document by id (graph/persisted_documents.py):
  hit, miss, registered, not_stored, unsupported, untrusted, invalid

Several processes (uvicorn --workers N, taskiq workers): start each with the same empty
PROMETHEUS_MULTIPROC_DIR (prometheus_client reads it at import); /metrics then adds up
every process's values (docs/observability.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from domain.provider_health import CircuitState, ProviderHealth
from infrastructure.gc_tuning import CollectorStats

disable_created_metrics()  # type: ignore[no-untyped-call]  # the `_created` series double the output and nobody graphs them

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PROVIDER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

GRAPHQL_OPERATIONS = Counter(
    "genhub_graphql_operations",
    "GraphQL operations by name and outcome (ok, error, rejected).",
    ["operation", "outcome"],
)
PERSISTED_DOCUMENTS = Counter(
    "genhub_persisted_documents",
    "Requests that name their document by id, by outcome (hit, miss, registered, not_stored, unsupported, ...).",
    ["outcome"],
)
GRAPHQL_DURATION = Histogram(
    "genhub_graphql_operation_duration_seconds", "GraphQL operation latency.", ["operation"], buckets=LATENCY_BUCKETS
)
ACTIVE_SUBSCRIPTIONS = Gauge("genhub_active_subscriptions", "Open GraphQL subscriptions.", multiprocess_mode="livesum")
QUEUE_DEPTH = Gauge(
    "genhub_task_queue_depth",
    "Tasks waiting for a worker (waiting) and delivered but not acknowledged (pending).",
    ["state"],
    multiprocess_mode="mostrecent",
)
TASKS = Counter("genhub_tasks", "Finished Taskiq tasks by outcome (ok, error).", ["task", "outcome"])
TASK_DURATION = Histogram("genhub_task_duration_seconds", "Task run time.", ["task"], buckets=TASK_BUCKETS)
TASKS_RUNNING = Gauge("genhub_tasks_running", "Tasks running now.", multiprocess_mode="livesum")
PROVIDER_DURATION = Histogram(
    "genhub_provider_call_duration_seconds",
    "Provider API call latency.",
    ["provider", "call"],
    buckets=PROVIDER_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "genhub_provider_errors", "Failed provider calls by error code.", ["provider", "call", "code"]
)
CREDIT_MOVES = Counter("genhub_credit_moves", "Committed credit ledger rows by kind.", ["kind"])
CREDITS_MOVED = Counter("genhub_credit_moved", "Credits moved by committed ledger rows (absolute), by kind.", ["kind"])
RATE_LIMIT_FALLBACKS = Counter(
    "genhub_rate_limit_fallbacks", "Rate-limit hits counted in process because Redis could not be reached."
)
CIRCUIT_FALLBACKS = Counter(
    "genhub_circuit_fallbacks", "Provider circuit calls answered in process because Redis could not be reached."
)
PROVIDER_CIRCUIT_OPEN = Gauge(
    "genhub_provider_circuit_open",
    "1 while the provider's circuit is open or half-open (its routes are skipped but for one probe).",
    ["provider"],
    multiprocess_mode="mostrecent",
)
PROVIDER_ERROR_RATIO = Gauge(
    "genhub_provider_recent_error_ratio",
    "Failed submits over all submits to the provider in the health window (-1: none).",
    ["provider"],
    multiprocess_mode="mostrecent",
)
PROVIDER_RUNNING = Gauge(
    "genhub_provider_running", "Generations the provider runs now.", ["provider"], multiprocess_mode="mostrecent"
)

GC_PACED = Gauge(
    "genhub_gc_paced_collections_total", "Young collections the pacer ran (on its clock).", multiprocess_mode="livesum"
)
GC_FREEZES = Gauge(
    "genhub_gc_freezes_total", "Times the pacer froze what survived a middle collection.", multiprocess_mode="livesum"
)
GC_RECLAIMS = Gauge(
    "genhub_gc_reclaims_total",
    "Full collections of the whole heap after it grew past its bound (each one a pause).",
    multiprocess_mode="livesum",
)
GC_LAST_RECLAIM = Gauge(
    "genhub_gc_last_reclaim_seconds", "How long the last reclaim paused the process.", multiprocess_mode="livemax"
)
GC_RECLAIM_AT = Gauge(
    "genhub_gc_reclaim_at_blocks",
    "Allocated memory blocks at which the next reclaim comes (twice the live heap after the last one).",
    multiprocess_mode="livemax",
)

# ---------------------------------------------------------------- exposition


def multiprocess_dir() -> str | None:
    # prometheus_client's own variable, read by the library at import; not a genhub setting.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> tuple[bytes, str]:
    """The exposition text: this process's registry, or every process's files in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# ---------------------------------------------------------------- GraphQL

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 500
_seen_operations: set[str] = set()


def operation_label(name: str | None) -> str:
    """Client-chosen names are bounded: odd ones and those past the first 500 become `other`."""
    if not name:
        return "anonymous"
    if not _NAME.match(name):
        return "other"
    if name not in _seen_operations:
        if len(_seen_operations) >= MAX_OPERATION_NAMES:
            return "other"
        _seen_operations.add(name)
    return name


@functools.lru_cache(maxsize=4 * MAX_OPERATION_NAMES)
def _graphql_children(label: str, outcome: str) -> tuple[Any, Any]:
    """The labelled series of one operation (`labels()` takes a lock and validates on every call)."""
    return GRAPHQL_OPERATIONS.labels(label, outcome), GRAPHQL_DURATION.labels(label)


def observe_graphql(operation: str | None, outcome: str, seconds: float) -> None:
    count, duration = _graphql_children(operation_label(operation), outcome)
    count.inc()
    duration.observe(seconds)


# ---------------------------------------------------------------- subscriptions


def subscription_opened() -> None:
    ACTIVE_SUBSCRIPTIONS.inc()


def subscription_closed() -> None:
    ACTIVE_SUBSCRIPTIONS.dec()


@contextlib.contextmanager
def track_subscription() -> Iterator[None]:
    """`with track_subscription(): ...` around the life of one subscription."""
    subscription_opened()
    try:
        yield
    finally:
        subscription_closed()


@contextlib.asynccontextmanager
async def tracked_subscription() -> AsyncIterator[None]:
    """The same for `async with` blocks."""
    with track_subscription():
        yield


# ---------------------------------------------------------------- tasks and the queue


class TaskMetricsMiddleware(TaskiqMiddleware):
    """Counts each task run by outcome with its duration; also how many run right now."""

    running = 0  # in this process, for the in-memory queue depth

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._started[message.task_id] = time.perf_counter()
        TaskMetricsMiddleware.running += 1
        TASKS_RUNNING.inc()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self._started.pop(message.task_id, None)
        TaskMetricsMiddleware.running -= 1
        TASKS_RUNNING.dec()
        seconds = time.perf_counter() - started if started is not None else float(result.execution_time)
        TASKS.labels(message.task_name, "error" if result.is_err else "ok").inc()
        TASK_DURATION.labels(message.task_name).observe(seconds)


def observe_task(task: str, outcome: str, seconds: float) -> None:
    """For work that does not run as a Taskiq task but should be counted like one."""
    TASKS.labels(task, outcome).inc()
    TASK_DURATION.labels(task).observe(seconds)


async def refresh_queue_depth(redis: Redis | None, *, stream: str, group: str) -> None:
    """Read the Redis stream's consumer group (lag + pending); in memory, what runs here is pending."""
    if redis is None:
        QUEUE_DEPTH.labels("waiting").set(0)
        QUEUE_DEPTH.labels("pending").set(TaskMetricsMiddleware.running)
        return
    waiting = pending = 0
    with contextlib.suppress(Exception):  # no stream or group yet: nothing was ever enqueued
        for info in await redis.xinfo_groups(stream):
            if _text(info.get("name")) == group:
                pending = int(info.get("pending") or 0)
                lag = info.get("lag")
                waiting = int(lag) if lag is not None else await _undelivered(redis, stream, info)
    QUEUE_DEPTH.labels("waiting").set(waiting)
    QUEUE_DEPTH.labels("pending").set(pending)


def observe_collections(stats: CollectorStats) -> None:
    """The collection pacer's counters, copied after each of its middle ticks."""
    GC_PACED.set(stats.ticks)
    GC_FREEZES.set(stats.freezes)
    GC_RECLAIMS.set(stats.reclaims)
    GC_LAST_RECLAIM.set(stats.last_reclaim_seconds)
    GC_RECLAIM_AT.set(stats.reclaim_at_blocks)


def observe_provider_health(found: Sequence[ProviderHealth]) -> None:
    """The provider gauges from the circuits' shared state (refreshed when /metrics is scraped)."""
    for health in found:
        PROVIDER_CIRCUIT_OPEN.labels(health.provider).set(0 if health.state is CircuitState.CLOSED else 1)
        rate = health.error_rate
        PROVIDER_ERROR_RATIO.labels(health.provider).set(-1 if rate is None else rate)
        PROVIDER_RUNNING.labels(health.provider).set(health.running)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _undelivered(redis: Redis, stream: str, info: Mapping[str, Any]) -> int:
    """Redis < 7 reports no `lag` (nor does 7 after trimming): count entries after the last delivered id."""
    last = _text(info.get("last-delivered-id") or "0-0")
    entries = await redis.xrange(stream, min=f"({last}", count=100_000)
    return len(entries or [])
