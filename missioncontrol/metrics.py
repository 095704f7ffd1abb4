"""Mission Control's own metrics, for Prometheus at /metrics.

Several processes (daphne workers, Celery workers) each count what they do. With
`PROMETHEUS_MULTIPROC_DIR` set in their environment before they start (`manage.py
serve` sets it for its workers; docker-compose sets it for every process sharing the
volume), prometheus-client keeps each process's values in memory-mapped files there and
/metrics sums them over all processes, live ones for the gauges ("livesum"). Without it
(one process, the embedded default) the values are this process's.

Metrics that describe shared state rather than one process's work (spool depth, server
statuses, database connections) are read when scraped, so every process answers the same.
A feature adds its own such gauges with `register_gauges` (the ingest spool, the MCP servers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set by `serve` in the environment of a worker it starts to replace one that died.
REPLACEMENT_ENV = "MC_SERVE_REPLACEMENT"

INGEST_EVENTS = Counter(
    "mission_control_ingest_events",
    "Events received by the ingest endpoint, by outcome (accepted, duplicate, rejected, spooled, refused).",
    ["outcome"],
)
SPOOL_REPLAYED = Counter(
    "mission_control_spool_replayed_events", "Spooled events replayed into the database."
)
WEBSOCKET_CONNECTIONS = Gauge(
    "mission_control_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
MESSAGE_THROUGHPUT = Counter(
    "mission_control_message_throughput",
    "Live events published to WebSocket channels, by channel kind.",
    ["kind"],
)
QUERY_LATENCY = Histogram(
    "mission_control_query_latency_seconds",
    "Time to answer REST and GraphQL queries.",
    ["surface"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOG_BUFFER_SIZE = Gauge(
    "mission_control_log_buffer_size",
    "Events produced inside Mission Control waiting to be stored, by batcher.",
    ["batcher"],
    multiprocess_mode="livesum",
)
GATEWAY_CALL_LATENCY = Histogram(
    "mission_control_gateway_call_seconds",
    "Tool calls through the gateway, by server and outcome.",
    ["mcp_id", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WEB_WORKER_RESTARTS = Counter(
    "mission_control_web_worker_restarts",
    "Web workers `serve` started to replace one that died (counted by the replacement).",
)
TASK_RUNS = Counter(
    "mission_control_task_runs", "Celery task runs, by task and final status.", ["task", "status"]
)


GaugeSource = Callable[[], Iterator[GaugeMetricFamily]]
_gauge_sources: list[GaugeSource] = []
_database_sources: list[GaugeSource] = []


def register_gauges(source: GaugeSource, *, database: bool = False) -> None:
    """Add `source`'s gauges, read at each scrape, to /metrics (once, however often called).

    A `database` source reads the database: its gauges are left out of a scrape the
    database does not answer (`mission_control_database_up` is 0 then).
    """
    sources = _database_sources if database else _gauge_sources
    if source not in sources:
        sources.append(source)


class SharedStateCollector(Collector):
    """Gauges read at scrape time: the registered sources' (spool depth, MCP server
    statuses), database connections."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for source in _gauge_sources:
            yield from source()
        yield from _database_gauges()


def _database_gauges() -> Iterator[GaugeMetricFamily]:
    from django.db import DatabaseError, close_old_connections, connection

    up = GaugeMetricFamily("mission_control_database_up", "1 if the database answered this scrape.")
    try:
        close_old_connections()
        connection.ensure_connection()
        read = [family for source in _database_sources for family in source()]
        pool = _connections_in_use(connection)
    except DatabaseError:
        up.add_metric([], 0)
        yield up
        return
    finally:
        with suppress(DatabaseError):
            close_old_connections()
    up.add_metric([], 1)
    yield up
    yield from read
    if pool is not None:
        db = GaugeMetricFamily(
            "mission_control_db_connection_pool",
            "Connections to Mission Control's database, by state (PostgreSQL's pg_stat_activity).",
            labels=["state"],
        )
        for state, n in pool.items():
            db.add_metric([state], n)
        yield db


def _connections_in_use(connection: Any) -> dict[str, int] | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() GROUP BY 1"
        )
        return {state: n for state, n in cursor.fetchall()}


_shared = SharedStateCollector()
_shared_registry = CollectorRegistry()
_shared_registry.register(_shared)


def exposition() -> tuple[bytes, str]:
    """The metrics text of every process (multiprocess mode) or of this one, and shared state."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(_shared_registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(_shared_registry), CONTENT_TYPE_LATEST


def surface(path: str) -> str | None:
    """Which query surface a request path belongs to (None: not measured)."""
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith("/api/"):
        return "rest"
    return None


@sync_and_async_middleware
def query_latency_middleware(get_response: Any) -> Any:
    """Observe the time to answer REST and GraphQL requests (mission_control_query_latency)."""
    if iscoroutinefunction(get_response):

        async def middleware(request: Any) -> Any:
            kind = surface(request.path)
            if kind is None:
                return await get_response(request)
            start = time.perf_counter()
            try:
                return await get_response(request)
            finally:
                QUERY_LATENCY.labels(kind).observe(time.perf_counter() - start)

    else:

        def middleware(request: Any) -> Any:  # type: ignore[misc]
            kind = surface(request.path)
            if kind is None:
                return get_response(request)
            start = time.perf_counter()
            try:
                return get_response(request)
            finally:
                QUERY_LATENCY.labels(kind).observe(time.perf_counter() - start)

    return middleware


def count_replacement() -> None:
    """At a web worker's start: count it if `serve` started it to replace a dead one."""
    if os.environ.pop(REPLACEMENT_ENV, None):
        WEB_WORKER_RESTARTS.inc()
