"""The real OpenTelemetry Python SDK and its OTLP/HTTP exporters, pointed at a served app.

The app is served on a real port (tests.served); the exporters post over real HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from logs.models import LogEntry
from tests import served as serving
from threads.models import ExecutionStep, LLMMessage, Thread

pytestmark = pytest.mark.django_db(transaction=True)
served = serving.served  # the fixture


class Relay(SpanExporter):
    """The process-wide provider's exporter: forwards to the test's current exporter."""

    target: SpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.target.export(spans) if self.target else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


RELAY = Relay()


@pytest.fixture(scope="module")
def global_tracing() -> TracerProvider:
    """The mcp SDK traces through the global provider, which can be set once per process."""
    provider = TracerProvider(resource=Resource.create({"service.name": "mcp-pair"}))
    provider.add_span_processor(BatchSpanProcessor(RELAY))
    trace.set_tracer_provider(provider)
    return provider


def span_exporter(url: str, key: str, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"}, **kwargs)


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated:DeprecationWarning")
def test_the_sdks_exporters_deliver_an_agents_spans_and_logs(served: str, open_key: str) -> None:
    resource = Resource.create({"service.name": "weather-agent"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter(served, open_key, compression=Compression.Gzip))
    )
    logger_provider = LoggerProvider(resource=resource)
    logs = OTLPLogExporter(endpoint=f"{served}/v1/logs", headers={"Authorization": f"Bearer {open_key}"})
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    log = logging.getLogger("weather-agent-test")
    log.addHandler(LoggingHandler(logger_provider=logger_provider))
    log.setLevel(logging.INFO)
    tracer = tracer_provider.get_tracer("weather")
    question = [{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}]}]
    try:
        with tracer.start_as_current_span(
            "invoke_agent weather", attributes={"gen_ai.operation.name": "invoke_agent"}
        ) as root:
            with (
                tracer.start_as_current_span(
                    "invoke_agent researcher",
                    attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"},
                ) as researcher,
                tracer.start_as_current_span(
                    "execute_tool get_weather",
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"},
                ),
            ):
                log.warning("weather API slow")
            with tracer.start_as_current_span(
                "chat gpt-5",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.usage.input_tokens": 40,
                    "gen_ai.input.messages": json.dumps(question),
                    "gen_ai.output.messages": json.dumps(answer),
                },
            ):
                pass
    finally:
        assert tracer_provider.force_flush(10_000) and logger_provider.force_flush(10_000)
        tracer_provider.shutdown()
        logger_provider.shutdown()
        log.handlers.clear()

    trace_thread = f"otel-{root.get_span_context().trace_id:032x}"
    child = f"{trace_thread}-{researcher.get_span_context().span_id:016x}"
    threads = {t.id: t for t in Thread.objects.all()}
    assert set(threads) == {trace_thread, child}
    assert threads[child].parent_id == trace_thread and threads[trace_thread].status == "complete"
    assert threads[trace_thread].mcp_id == "weather-agent"
    assert list(ExecutionStep.objects.filter(thread_id=child).values_list("step_type", "description")) == [
        ("tool_call", "execute_tool get_weather")
    ]
    chat = ExecutionStep.objects.get(thread_id=trace_thread)
    assert chat.description == "chat gpt-5" and chat.details["usage"] == {"input_tokens": 40}
    assert list(LLMMessage.objects.order_by("timestamp").values_list("thread_id", "role", "content")) == [
        (trace_thread, "user", "Weather in Paris?"),
        (trace_thread, "agent", "Sunny."),
    ]
    entry = LogEntry.objects.get()
    assert (entry.level, entry.message, entry.thread_id) == ("WARN", "weather API slow", trace_thread)
    assert entry.service == "weather-agent"


def test_an_mcp_sdk_client_and_server_pair_lands_as_a_thread_with_its_steps(
    served: str, open_key: str, global_tracing: TracerProvider
) -> None:
    server = MCPServer("calculator")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    async def agent() -> None:
        tracer = trace.get_tracer("agent")
        with tracer.start_as_current_span("agent run"):
            async with Client(server) as client:
                assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
                assert (await client.call_tool("divide", {"a": 1, "b": 0})).is_error

    RELAY.target = span_exporter(served, open_key)
    try:
        import anyio

        anyio.run(agent)
        assert global_tracing.force_flush(10_000)
    finally:
        RELAY.target = None

    (thread,) = Thread.objects.all()
    assert (thread.user_input, thread.mcp_id, thread.status) == ("agent run", "mcp-pair", "complete")
    steps = list(thread.steps.values_list("step_type", "description", "status"))
    # In process, the client dispatches directly: the server's spans are the steps.
    assert [s for s in steps if s[0] == "tool_call"] == [
        ("tool_call", "tools/call add", "complete"),
        ("tool_call", "tools/call divide", "error"),
    ]
    assert ("script", "tools/list", "complete") in steps
    served_add = thread.steps.get(description="tools/call add")
    assert served_add.details["tool"] == "add" and served_add.details["mcp_method"] == "tools/call"
    assert served_add.details["otel"]["kind"] == "server"
    assert thread.steps.get(description="tools/call divide").details["error_type"] == "tool_error"
