"""Threads and steps forwarded as spans to an external OpenTelemetry collector: a local
OTLP/HTTP receiver started by the test takes them, decoded with opentelemetry-proto."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.cache import caches
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from missioncontrol.config import ConfigError, OtlpExportConfig, parse_config
from tests.conftest import event, store
from tests.processes import Server, clean_env, create_key, free_port, manage, post_events
from threads import otlp_export

pytestmark = pytest.mark.django_db(transaction=True)


class Collector:
    """An OTLP/HTTP trace receiver on loopback; `failures` answers the next ones with a 503."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], ExportTraceServiceRequest]] = []
        self.failures = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if collector.failures > 0:
                    collector.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.requests.append((self.path, dict(self.headers), request))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[str, Span]]:
        """(service.name, span) of every span received."""
        out = []
        for _path, _headers, request in self.requests:
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                out.extend((service, span) for scope in resource.scope_spans for span in scope.spans)
        return out


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def exporting(settings: Any, collector: Collector) -> Collector:
    settings.OTLP_EXPORT_ENDPOINT = collector.url
    settings.OTLP_EXPORT = OtlpExportConfig(
        endpoint=collector.url, headers={"x-api-key": "k-123"}, interval=10, delay=30
    )
    caches["shared"].delete(otlp_export.WATERMARK_KEY)
    return collector


def attributes(span: Span) -> dict[str, Any]:
    out = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, kind)
    return out


def iso(at: datetime) -> str:
    return at.isoformat()


def finished_a_minute_ago() -> datetime:
    """A root thread (on server srv-a, two steps, the second failed) and its child (no server)
    that ended about a minute ago."""
    end = datetime.now(UTC) - timedelta(seconds=60)
    start = end - timedelta(seconds=5)
    store(
        event("thread.started", thread_id="root-1", user_input="summarise the repo", timestamp=iso(start)),
        event("thread.step", thread_id="root-1", sequence=1, timestamp=iso(start), duration_ms=250.0),
        event(
            "thread.step",
            thread_id="root-1",
            sequence=2,
            step_type="tool_call",
            description="git push",
            status="error",
            timestamp=iso(start + timedelta(seconds=1)),
        ),
        event("thread.started", thread_id="child-1", parent_id="root-1", timestamp=iso(start)),
        event("thread.ended", thread_id="child-1", timestamp=iso(end - timedelta(seconds=1))),
        event("thread.ended", thread_id="root-1", status="error", timestamp=iso(end)),
        mcp_id="srv-a",
    )
    return end


def test_finished_threads_and_their_steps_reach_the_collector_as_spans(exporting: Collector) -> None:
    finished_a_minute_ago()
    caches["shared"].set(otlp_export.WATERMARK_KEY, datetime.now(UTC) - timedelta(minutes=5))

    assert otlp_export.export_due() == 2
    [(path, headers, _request)] = exporting.requests
    assert path == "/v1/traces"
    assert headers["Content-Type"] == "application/x-protobuf" and headers["x-api-key"] == "k-123"
    spans = {
        attributes(s).get("mc.step.sequence", attributes(s)["mc.thread.id"]): (svc, s)
        for svc, s in exporting.spans()
    }
    service, root = spans["root-1"]
    _, child = spans["child-1"]
    assert service == "srv-a"
    assert root.name == "summarise the repo" and root.parent_span_id == b""
    assert root.status.code == Status.STATUS_CODE_ERROR
    assert attributes(root)["mc.thread.status"] == "error"
    assert child.trace_id == root.trace_id and child.parent_span_id == root.span_id
    assert child.status.code == Status.STATUS_CODE_OK
    assert (root.end_time_unix_nano - root.start_time_unix_nano) == 5 * 10**9
    steps = [s for _svc, s in exporting.spans() if "mc.step.sequence" in attributes(s)]
    assert sorted(attributes(s)["mc.step.sequence"] for s in steps) == [1, 2]
    for step in steps:
        assert step.trace_id == root.trace_id and step.parent_span_id == root.span_id
    failed = next(s for s in steps if attributes(s)["mc.step.sequence"] == 2)
    assert failed.name == "tool_call: git push" and failed.status.code == Status.STATUS_CODE_ERROR
    first = next(s for s in steps if attributes(s)["mc.step.sequence"] == 1)
    assert first.end_time_unix_nano - first.start_time_unix_nano == 250 * 10**6

    # Sent once: the next run has nothing new.
    assert otlp_export.export_due() == 0
    assert len(exporting.requests) == 1


def test_a_thread_is_exported_only_once_its_delay_has_passed(exporting: Collector) -> None:
    end = finished_a_minute_ago()
    caches["shared"].set(otlp_export.WATERMARK_KEY, end - timedelta(minutes=5))
    # 20 s after it ended: within the 30 s delay, not yet.
    assert otlp_export.export_due(now=end + timedelta(seconds=20)) == 0
    assert exporting.requests == []
    assert otlp_export.export_due(now=end + timedelta(seconds=40)) == 2


def test_a_collector_that_is_down_gets_the_spans_on_a_later_run(exporting: Collector) -> None:
    finished_a_minute_ago()
    caches["shared"].set(otlp_export.WATERMARK_KEY, datetime.now(UTC) - timedelta(minutes=5))
    exporting.failures = 1
    with pytest.raises(httpx.HTTPStatusError):
        otlp_export.export_due()
    assert otlp_export.export_due() == 2
    assert {attributes(s)["mc.thread.id"] for _svc, s in exporting.spans()} == {"root-1", "child-1"}


def test_nothing_is_exported_or_scheduled_by_default(collector: Collector) -> None:
    finished_a_minute_ago()
    assert settings.OTLP_EXPORT_ENDPOINT is None
    assert "threads.export-spans" not in settings.CELERY_BEAT_SCHEDULE
    assert otlp_export.export_due() == 0
    assert collector.requests == []


def test_the_export_settings_are_checked_at_start_up() -> None:
    parsed = parse_config(
        {"export": {"otlp": {"endpoint": "http://collector:4318", "headers": {"x-k": "v"}, "interval": "5s"}}}
    )
    assert parsed.export.otlp == OtlpExportConfig("http://collector:4318", {"x-k": "v"}, 5, 30)
    assert otlp_export.traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_export.traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
    for bad, field in (
        ({"otlp": {"endpoint": "collector:4318"}}, "export.otlp.endpoint"),
        ({"otlp": {"endpiont": "http://c"}}, "export.otlp.endpiont"),
        ({"otlp": {"headers": ["x"]}}, "export.otlp.headers"),
        ({"otlp": {"interval": 0}}, "export.otlp.interval"),
        ({"jaeger": {}}, "export.jaeger"),
    ):
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            parse_config({"export": bad})


@pytest.mark.slow
def test_a_served_process_exports_the_threads_it_records(tmp_path: Path, collector: Collector) -> None:
    """`manage.py serve` with export.otlp configured: a thread pushed to its ingest endpoint
    reaches the collector as spans, on the in-process schedule."""
    config = tmp_path / "mission_control.yml"
    config.write_text(
        f"export:\n  otlp:\n    endpoint: {collector.url}\n    interval: 1s\n    delay: 1s\n"
        "    headers:\n      authorization: Bearer collector-key\n"
    )
    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0", MC_CONFIG=str(config))
    manage(env, "migrate", "--noinput", "-v0")
    key = create_key(env, "agent", "srv-served")
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        now = datetime.now(UTC)
        answer = post_events(
            server.url,
            key,
            [
                event("thread.started", thread_id="served-1", user_input="deploy", timestamp=iso(now)),
                event("thread.step", thread_id="served-1", sequence=1, timestamp=iso(now)),
                event("thread.ended", thread_id="served-1", timestamp=iso(now + timedelta(milliseconds=10))),
            ],
        )
        assert answer["accepted"] == 3, answer
        deadline = time.monotonic() + 30
        while not any(attributes(s).get("mc.thread.id") == "served-1" for _svc, s in collector.spans()):
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.2)
        spans = [(svc, s) for svc, s in collector.spans() if attributes(s)["mc.thread.id"] == "served-1"]
        assert {svc for svc, _s in spans} == {"srv-served"}
        assert sorted(s.name for _svc, s in spans) == ["deploy", "tool_call: git log"]
        assert all(
            headers["authorization"] == "Bearer collector-key" for _p, headers, _r in collector.requests
        )
    finally:
        server.stop()
