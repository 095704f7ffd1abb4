"""Threads and their steps as OpenTelemetry spans, sent to an external collector over
OTLP/HTTP (protobuf): what other monitoring systems (Jaeger, Tempo, Honeycomb, a vendor's
collector) show beside their own traces.

Off unless `export.otlp.endpoint` (or MC_OTLP_EXPORT_ENDPOINT) is set. Every
`export.otlp.interval` the `threads.export_spans` task sends the threads that ended
between the previous export and `export.otlp.delay` ago (so their last steps have
arrived): each thread is a span (a child thread's span under its parent's, in its root
thread's trace) with one span per step under it. Trace and span ids are derived from the
thread and step ids, so a thread sent twice is the same span to the collector. Where the
export stands is kept in the shared cache; a failed export is tried again by the next run.
A thread whose end is reported later than `delay` after it happened is not exported.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import caches
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from threads.models import ExecutionStep, Thread

logger = logging.getLogger(__name__)

WATERMARK_KEY = "otlp-export:until"
BATCH_THREADS = 200
SCOPE = InstrumentationScope(name="mission-control")
_STATUS = {
    Thread.Status.COMPLETE: Status.STATUS_CODE_OK,
    Thread.Status.ERROR: Status.STATUS_CODE_ERROR,
}


def traces_url(endpoint: str) -> str:
    """Where spans are posted: `{endpoint}/v1/traces`, unless the endpoint names that path."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def _id(kind: str, key: str, size: int) -> bytes:
    return hashlib.sha256(f"{kind}:{key}".encode()).digest()[:size]


def trace_id(root_thread_id: str) -> bytes:
    return _id("trace", root_thread_id, 16)


def thread_span_id(thread_id: str) -> bytes:
    return _id("thread", thread_id, 8)


def step_span_id(thread_id: str, sequence: int) -> bytes:
    return _id("step", f"{thread_id}:{sequence}", 8)


def _nanos(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000) * 1000


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


def _roots(threads: Sequence[Thread]) -> dict[str, str]:
    """Each thread's root thread id (its ancestors looked up, parents that never came included)."""
    parent_of: dict[str, str | None] = {t.id: t.parent_id for t in threads}
    wanted = {p for p in parent_of.values() if p and p not in parent_of}
    for _ in range(50):  # deeper nesting than this is cut: its top becomes the root
        if not wanted:
            break
        found = dict(Thread.objects.filter(id__in=wanted).values_list("id", "parent_id"))
        for missing in wanted - set(found):
            parent_of[missing] = None
        parent_of.update(found)
        wanted = {p for p in found.values() if p and p not in parent_of}

    def root(thread_id: str) -> str:
        seen = set()
        while (parent := parent_of.get(thread_id)) and thread_id not in seen:
            seen.add(thread_id)
            thread_id = parent
        return thread_id

    return {t.id: root(t.id) for t in threads}


def thread_spans(thread: Thread, root_id: str, steps: Iterable[ExecutionStep]) -> list[Span]:
    """The thread's span and its steps' spans."""
    trace = trace_id(root_id)
    own = thread_span_id(thread.id)
    ended = thread.ended_at or thread.started_at
    span = Span(
        trace_id=trace,
        span_id=own,
        parent_span_id=thread_span_id(thread.parent_id) if thread.parent_id else b"",
        name=(thread.user_input.splitlines() or [""])[0][:120] or f"thread {thread.id}",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=_nanos(thread.started_at),
        end_time_unix_nano=_nanos(max(ended, thread.started_at)),
        attributes=_attributes(
            {
                "mc.thread.id": thread.id,
                "mc.thread.status": thread.status,
                "mc.mcp.id": thread.mcp_id,
                "mc.team": thread.team.slug if thread.team_id and thread.team else None,
                "mc.thread.error_count": thread.error_count,
            }
        ),
        status=Status(code=_STATUS.get(thread.status, Status.STATUS_CODE_UNSET)),
    )
    spans = [span]
    for step in steps:
        end = step.timestamp + timedelta(milliseconds=step.duration_ms or 0)
        failed = step.status == ExecutionStep.Status.ERROR
        spans.append(
            Span(
                trace_id=trace,
                span_id=step_span_id(thread.id, step.sequence),
                parent_span_id=own,
                name=f"{step.step_type}: {step.description}"[:120] if step.description else step.step_type,
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=_nanos(step.timestamp),
                end_time_unix_nano=_nanos(end),
                attributes=_attributes(
                    {
                        "mc.thread.id": thread.id,
                        "mc.step.sequence": step.sequence,
                        "mc.step.type": step.step_type,
                        "mc.step.status": step.status,
                    }
                ),
                status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_UNSET),
            )
        )
    return spans


def export_request(threads: Sequence[Thread]) -> ExportTraceServiceRequest:
    """One OTLP request for `threads` (their steps read here): a resource per server
    (`service.name` is the thread's MCP server id, or mission-control)."""
    roots = _roots(threads)
    steps: dict[str, list[ExecutionStep]] = {}
    for step in ExecutionStep.objects.filter(thread_id__in=[t.id for t in threads]).order_by("sequence"):
        steps.setdefault(step.thread_id, []).append(step)
    by_service: dict[str, list[Span]] = {}
    for thread in threads:
        service = thread.mcp_id or "mission-control"
        by_service.setdefault(service, []).extend(
            thread_spans(thread, roots[thread.id], steps.get(thread.id, ()))
        )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=_attributes({"service.name": service, "telemetry.sdk.name": "mission-control"})
                ),
                scope_spans=[ScopeSpans(scope=SCOPE, spans=spans)],
            )
            for service, spans in sorted(by_service.items())
        ]
    )


def send(request: ExportTraceServiceRequest) -> None:
    """POST `request` to the configured collector; httpx.HTTPError if it does not take it."""
    otlp = settings.OTLP_EXPORT
    headers = {**otlp.headers, "Content-Type": "application/x-protobuf"}
    answer = httpx.post(
        traces_url(settings.OTLP_EXPORT_ENDPOINT),
        content=request.SerializeToString(),
        headers=headers,
        timeout=10,
    )
    answer.raise_for_status()


def export_due(now: datetime | None = None) -> int:
    """Send the threads that ended since the last export and at least `delay` ago; how many.

    Nothing (0) when no endpoint is configured. The watermark moves only once every
    batch was taken, so a collector that is down gets them on a later run.
    """
    if not settings.OTLP_EXPORT_ENDPOINT:
        return 0
    otlp = settings.OTLP_EXPORT
    until = (now or timezone.now()) - timedelta(seconds=otlp.delay)
    cache = caches["shared"]
    since = cache.get(WATERMARK_KEY) or until - timedelta(seconds=otlp.interval)
    if since >= until:
        return 0
    threads = list(
        Thread.objects.finished_between(since, until).select_related("team").order_by("ended_at", "id")
    )
    for start in range(0, len(threads), BATCH_THREADS):
        send(export_request(threads[start : start + BATCH_THREADS]))
    cache.set(WATERMARK_KEY, until, None)
    if threads:
        logger.info("otlp export: %d thread(s) sent to %s", len(threads), settings.OTLP_EXPORT_ENDPOINT)
    return len(threads)
