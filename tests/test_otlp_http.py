"""POST /v1/traces and /v1/logs: OTLP/HTTP in protobuf and JSON, answers as OTLP prescribes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.test import override_settings
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from logs.models import LogEntry
from threads.models import ExecutionStep, LLMMessage, Thread

# The endpoint stores exports from executor threads, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT, TOOL, CHAT = (bytes.fromhex(f"{i:016x}") for i in (0xA1, 0xA2, 0xA3))
T0 = 1_790_000_000_000_000_000
PROTOBUF = "application/x-protobuf"


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def pb_span(
    span_id: bytes, name: str, parent: bytes = b"", start: int = 0, end: int = 1, **attrs: Any
) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0 + start * 1_000_000,
        end_time_unix_nano=T0 + end * 1_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if attrs.get("error.type") else Status.STATUS_CODE_OK),
    )


def traces(*spans: Span) -> ExportTraceServiceRequest:
    resource = Resource(attributes=[kv("service.name", "weather-agent")])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=list(spans))])]
    )


def agent_trace() -> ExportTraceServiceRequest:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "Sunny, 21C."}]}]
    return traces(
        pb_span(ROOT, "invoke_agent weather", start=0, end=30, **{"gen_ai.operation.name": "invoke_agent"}),
        pb_span(
            TOOL,
            "execute_tool get_weather",
            ROOT,
            5,
            15,
            **{
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "error.type": "timeout",
            },
        ),
        pb_span(
            CHAT,
            "chat gpt-5",
            ROOT,
            16,
            29,
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(answer),
            },
        ),
    )


async def post(
    path: str,
    body: bytes | str,
    key: str | None,
    content_type: str = PROTOBUF,
    *,
    header: str = "Authorization",
    **headers: str,
) -> httpx.Response:
    from missioncontrol.asgi import application

    sent = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if key:
        sent[header] = f"Bearer {key}" if header == "Authorization" else key
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(path, content=body, headers=sent)


@sync_to_async
def stored() -> dict[str, Any]:
    return {
        "threads": {t.id: (t.status, t.parent_id, t.mcp_id) for t in Thread.objects.all()},
        "steps": [(s.step_type, s.description, s.status) for s in ExecutionStep.objects.order_by("sequence")],
        "messages": [(m.role, m.content) for m in LLMMessage.objects.order_by("timestamp")],
        "logs": [(log.level, log.thread_id, log.message) for log in LogEntry.objects.order_by("timestamp")],
    }


def thread_id() -> str:
    return f"otel-{TRACE.hex()}"


async def test_it_stores_a_protobuf_export_as_a_thread_with_steps_and_transcript(ingest_key: str) -> None:
    response = await post("/v1/traces", agent_trace().SerializeToString(), ingest_key)
    assert response.status_code == 200 and response.headers["content-type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    data = await stored()
    assert data["threads"] == {thread_id(): ("complete", None, "srv-alpha")}
    assert data["steps"] == [
        ("tool_call", "execute_tool get_weather", "error"),
        ("script", "chat gpt-5", "complete"),
    ]
    assert data["messages"] == [("user", "Weather in Paris?"), ("agent", "Sunny, 21C.")]
    step = await ExecutionStep.objects.aget(description="chat gpt-5")
    assert step.details["usage"] == {"output_tokens": 7} and step.duration_ms == 13.0


async def test_a_resent_export_is_stored_once(ingest_key: str) -> None:
    body = agent_trace().SerializeToString()
    await post("/v1/traces", body, ingest_key)
    first = await stored()
    response = await post("/v1/traces", body, ingest_key)
    assert response.status_code == 200
    assert await stored() == first


async def test_it_accepts_otlp_json_with_hex_ids_and_string_int64(ingest_key: str) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "weather-agent"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": TOOL.hex(),
                                "name": "tools/call get_time",
                                "kind": 2,
                                "startTimeUnixNano": str(T0),
                                "endTimeUnixNano": str(T0 + 2_000_000),
                                "attributes": [
                                    {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
                                    {"key": "gen_ai.tool.name", "value": {"stringValue": "get_time"}},
                                    {"key": "retries", "value": {"intValue": "2"}},
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = await post("/v1/traces", json.dumps(body), ingest_key, "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json" and response.json() == {}
    step = await ExecutionStep.objects.aget()
    assert (step.step_type, step.thread_id, step.duration_ms) == ("tool_call", thread_id(), 2.0)
    assert step.details["tool"] == "get_time" and step.details["attributes"] == {"retries": 2}
    assert step.details["otel"]["kind"] == "server" and step.details["otel"]["scope"] == "manual"


async def test_it_accepts_gzip_bodies_and_the_x_api_key_header(ingest_key: str) -> None:
    body = gzip.compress(agent_trace().SerializeToString())
    response = await post("/v1/traces", body, ingest_key, header="X-API-Key", Content_Encoding="gzip")
    assert response.status_code == 200
    assert len((await stored())["steps"]) == 2


async def test_it_reports_refused_spans_as_partial_success(ingest_key: str) -> None:
    bad = pb_span(b"\x00" * 8, "no id")
    response = await post("/v1/traces", traces(bad, pb_span(ROOT, "fine")).SerializeToString(), ingest_key)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert partial.error_message == "span 'no id': invalid span id '0000000000000000'"
    assert (await stored())["steps"] == [("script", "fine", "complete")]


async def test_partial_success_in_json_counts_as_a_string(ingest_key: str) -> None:
    body = {
        "resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": TRACE.hex(), "spanId": "", "name": "x"}]}]}]
    }
    response = await post("/v1/traces", json.dumps(body), ingest_key, "application/json")
    assert response.json() == {
        "partialSuccess": {"rejectedSpans": "1", "errorMessage": "span 'x': invalid span id ''"}
    }


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        (PROTOBUF, b"\xff\xff\xff", "not a protobuf ExportTraceServiceRequest"),
        ("application/json", b"{not json", "not valid JSON"),
        ("application/json", b"[1]", "expected a JSON object (ExportTraceServiceRequest), got list"),
        (
            "application/json",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "not a hex",
        ),
        (
            "application/json",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"endTimeUnixNano": "soon"}]}]}]}',
            "soon",
        ),
    ],
)
async def test_it_answers_400_with_the_reason_for_an_undecodable_body(
    ingest_key: str, content_type: str, body: bytes, reason: str
) -> None:
    response = await post("/v1/traces", body, ingest_key, content_type)
    assert response.status_code == 400
    if content_type == PROTOBUF:
        status = status_pb2.Status.FromString(response.content)
        message = status.message
    else:
        message = response.json()["message"]
        assert response.json()["code"] == 3
    assert reason in message


async def test_it_answers_400_for_a_broken_gzip_body(ingest_key: str) -> None:
    response = await post("/v1/traces", b"not gzip", ingest_key, Content_Encoding="gzip")
    assert response.status_code == 400
    assert "not a valid gzip body" in status_pb2.Status.FromString(response.content).message


async def test_it_answers_401_without_or_with_an_unknown_key(ingest_key: str) -> None:
    body = agent_trace().SerializeToString()
    for key in (None, "mc_ingest_nope"):
        response = await post("/v1/traces", body, key)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert (await stored())["threads"] == {}


async def test_it_answers_413_for_a_body_over_the_limit_compressed_or_not(ingest_key: str) -> None:
    big = traces(*(pb_span(bytes.fromhex(f"{i + 1:016x}"), "x" * 500) for i in range(20))).SerializeToString()
    with override_settings(INGEST_MAX_BODY_BYTES=2048):
        assert (await post("/v1/traces", big, ingest_key)).status_code == 413
        response = await post("/v1/traces", gzip.compress(big), ingest_key, Content_Encoding="gzip")
        assert response.status_code == 413
        assert "once decompressed" in status_pb2.Status.FromString(response.content).message


async def test_it_answers_415_for_another_content_type_or_encoding(ingest_key: str) -> None:
    response = await post("/v1/traces", b"x", ingest_key, "text/plain")
    assert response.status_code == 415 and "application/x-protobuf" in response.json()["message"]
    response = await post("/v1/traces", b"x", ingest_key, Content_Encoding="br")
    assert response.status_code == 415


async def test_it_answers_503_with_retry_after_and_stores_nothing_when_the_database_is_down(
    ingest_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr("missioncontrol.ingest.otlp.edge.ingest", unreachable)
    response = await post("/v1/traces", agent_trace().SerializeToString(), ingest_key)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert status_pb2.Status.FromString(response.content).code == 14  # UNAVAILABLE


async def test_it_stores_log_records_correlated_to_the_traces_thread(ingest_key: str) -> None:
    await post("/v1/traces", agent_trace().SerializeToString(), ingest_key)
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[kv("service.name", "weather-agent")]),
                scope_logs=[
                    ScopeLogs(
                        log_records=[
                            LogRecord(
                                time_unix_nano=T0 + 6_000_000,
                                severity_number=17,
                                severity_text="ERROR",
                                body=AnyValue(string_value="weather API timed out"),
                                trace_id=TRACE,
                                span_id=TOOL,
                            ),
                            LogRecord(
                                time_unix_nano=T0, severity_number=9, body=AnyValue(string_value="boot")
                            ),
                        ]
                    )
                ],
            )
        ]
    )
    response = await post("/v1/logs", request.SerializeToString(), ingest_key)
    assert response.status_code == 200
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    assert (await stored())["logs"] == [
        ("INFO", None, "boot"),
        ("ERROR", thread_id(), "weather API timed out"),
    ]
    entry = await LogEntry.objects.aget(level="ERROR")
    assert (entry.service, entry.mcp_id, entry.context["span_id"]) == (
        "weather-agent",
        "srv-alpha",
        TOOL.hex(),
    )
    # Re-sent: stored once.
    await post("/v1/logs", request.SerializeToString(), ingest_key)
    assert await LogEntry.objects.acount() == 2


async def test_subscribers_hear_of_an_export_once_it_is_stored(ingest_key: str, socket: Any) -> None:
    async with socket() as ws:
        await ws.subscribe("global")
        await post("/v1/traces", agent_trace().SerializeToString(), ingest_key)
        created = await ws.events("global")
        assert created[0]["type"] == "thread.created" and created[0]["thread_id"] == thread_id()


async def test_a_nul_in_one_record_or_span_is_stored_escaped_and_named_in_the_partial_success(
    ingest_key: str,
) -> None:
    def record(text: str, at: int) -> LogRecord:
        return LogRecord(time_unix_nano=T0 + at, severity_number=9, body=AnyValue(string_value=text))

    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[kv("service.name", "weather-agent")]),
                scope_logs=[
                    ScopeLogs(log_records=[record("fine", 1), record("bad\x00byte", 2), record("ok", 3)])
                ],
            )
        ]
    )
    response = await post("/v1/logs", request.SerializeToString(), ingest_key)
    assert response.status_code == 200
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_log_records == 0
    assert partial.error_message.startswith("item 1: message: holds NUL (U+0000)")
    assert sorted(m for _l, _t, m in (await stored())["logs"]) == ["bad\\u0000byte", "fine", "ok"]

    spans = traces(pb_span(ROOT, "invoke_agent weather\x00", end=30, note="a\x00b"))
    response = await post("/v1/traces", spans.SerializeToString(), ingest_key)
    assert response.status_code == 200
    assert (await Thread.objects.aget(id=thread_id())).status == "complete"


async def test_a_lone_surrogate_in_otlp_json_is_stored_escaped_not_refused_with_the_export(
    ingest_key: str,
) -> None:
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "agent"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {"timeUnixNano": str(T0), "body": {"stringValue": "half \ud800 pair"}},
                            {"timeUnixNano": str(T0 + 1), "body": {"stringValue": "plain"}},
                        ]
                    }
                ],
            }
        ]
    }
    response = await post("/v1/logs", json.dumps(body), ingest_key, "application/json")
    assert response.status_code == 200, response.text
    assert sorted(m for _l, _t, m in (await stored())["logs"]) == ["half \\ud800 pair", "plain"]
