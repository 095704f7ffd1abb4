"""The OTLP mapping: spans and log records as threads, steps, transcript and logs (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from missioncontrol.ingest.otlp.mapping import LogRecord, Span, SpanEvent, level, map_logs, map_spans

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0 = 1_790_000_000_000_000_000  # ns


def span(span_id: str, name: str, parent: str = "", start: float = 0, end: float = 1, **attrs: Any) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        start_ns=T0 + int(start * 1e9),
        end_ns=T0 + int(end * 1e9),
        attributes=attrs,
        resource={"service.name": "weather-agent"},
    )


def by_type(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


ROOT, CHAT, TOOL, AGENT, INNER = (f"{i:016x}" for i in range(1, 6))


def test_it_makes_a_trace_a_thread_and_its_spans_steps() -> None:
    events = map_spans(
        [span(ROOT, "handle request", start=0, end=3), span(CHAT, "chat gpt-5", ROOT, 1, 2)]
    ).events
    (started,) = by_type(events, "thread.started")
    assert started["thread_id"] == f"otel-{TRACE}" and started["parent_id"] is None
    assert started["mcp_id"] == "weather-agent" and started["user_input"] == "handle request"
    (ended,) = by_type(events, "thread.ended")
    assert ended["status"] == "complete"
    steps = sorted(by_type(events, "thread.step"), key=lambda s: s["sequence"])
    assert [(s["thread_id"], s["description"]) for s in steps] == [
        (f"otel-{TRACE}", "handle request"),
        (f"otel-{TRACE}", "chat gpt-5"),
    ]
    assert steps[1]["duration_ms"] == 1000.0 and steps[1]["status"] == "complete"


def test_it_types_steps_from_the_genai_and_mcp_conventions() -> None:
    spans = [
        span(ROOT, "root"),
        span(
            TOOL,
            "execute_tool get_weather",
            ROOT,
            **{
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                "error.type": "TimeoutError",
            },
        ),
        span(
            CHAT,
            "chat gpt-5",
            ROOT,
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.request.model": "gpt-5",
            },
        ),
        span(AGENT, "MCP send tools/call get_time", ROOT, **{"mcp.method.name": "tools/call"}),
        span(INNER, "initialize", ROOT, **{"mcp.method.name": "initialize", "mcp.session.id": "s-1"}),
    ]
    steps = {s["description"]: s for s in by_type(map_spans(spans).events, "thread.step")}
    tool = steps["execute_tool get_weather"]
    assert tool["step_type"] == "tool_call" and tool["status"] == "error"
    assert tool["details"]["tool"] == "get_weather" and tool["details"]["arguments"] == {"city": "Paris"}
    assert tool["details"]["error_type"] == "TimeoutError"
    chat = steps["chat gpt-5"]
    assert chat["step_type"] == "script" and chat["details"]["category"] == "llm"
    assert chat["details"]["usage"] == {"input_tokens": 12} and chat["details"]["model"] == "gpt-5"
    client = steps["MCP send tools/call get_time"]
    assert client["step_type"] == "tool_call" and client["details"]["tool"] == "get_time"
    assert steps["initialize"]["details"]["mcp_method"] == "initialize"
    assert steps["initialize"]["details"]["mcp_session_id"] == "s-1"


def test_it_keeps_unmapped_attributes_and_span_events_in_the_details() -> None:
    s = span(ROOT, "work", **{"http.route": "/chat", "gen_ai.operation.name": "chat"})
    s.events = [SpanEvent("retry", T0 + 500, {"attempt": 2})]
    s.status_code, s.status_message = "error", "upstream down"
    (step,) = by_type(map_spans([s]).events, "thread.step")
    assert step["details"]["attributes"] == {"http.route": "/chat"}
    assert step["details"]["events"][0]["name"] == "retry" and step["details"]["events"][0]["attempt"] == 2
    assert step["details"]["status_message"] == "upstream down" and step["status"] == "error"
    assert step["details"]["otel"]["span_id"] == ROOT


def test_it_opens_a_child_thread_for_an_agent_span_and_puts_its_spans_there() -> None:
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"}
    events = map_spans(
        [
            span(ROOT, "invoke_agent planner", **{"gen_ai.operation.name": "invoke_agent"}),
            span(AGENT, "invoke_agent researcher", ROOT, **agent),
            span(TOOL, "execute_tool search", AGENT, **{"gen_ai.operation.name": "execute_tool"}),
            span(CHAT, "chat", ROOT, **{"gen_ai.operation.name": "chat"}),
        ]
    ).events
    child = f"otel-{TRACE}-{AGENT}"
    threads = {e["thread_id"]: e for e in by_type(events, "thread.started")}
    assert set(threads) == {f"otel-{TRACE}", child}
    assert threads[child]["parent_id"] == f"otel-{TRACE}"
    assert threads[child]["execution_context"]["agent"] == {"name": "researcher"}
    steps = {s["description"]: s["thread_id"] for s in by_type(events, "thread.step")}
    assert steps == {"execute_tool search": child, "chat": f"otel-{TRACE}"}  # agent spans are threads


def test_it_groups_a_sessions_traces_under_the_sessions_thread() -> None:
    events = map_spans([span(ROOT, "tools/call get_time", **{"mcp.session.id": "abc"})]).events
    started = {e["thread_id"]: e for e in by_type(events, "thread.started")}
    assert started[f"otel-{TRACE}"]["parent_id"] == "otel-session-abc"
    assert started["otel-session-abc"]["user_input"] == "session abc"
    assert started["otel-session-abc"]["mcp_id"] == "weather-agent"


def test_it_turns_input_and_output_messages_into_a_transcript_stored_once() -> None:
    question = [{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
    call = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}],
        }
    ]
    answer = [
        {"role": "assistant", "parts": [{"type": "text", "content": "Sunny."}], "finish_reason": "stop"}
    ]
    first = span(
        CHAT,
        "chat",
        ROOT,
        1,
        2,
        **{"gen_ai.input.messages": json.dumps(question), "gen_ai.output.messages": json.dumps(call)},
    )
    second = span(
        TOOL,
        "chat",
        ROOT,
        3,
        4,
        **{
            "gen_ai.input.messages": json.dumps(question + call),
            "gen_ai.output.messages": json.dumps(answer),
        },
    )
    messages = by_type(map_spans([first, second]).events, "thread.message")
    distinct = {m["id"]: m for m in messages}  # the repeated history has the same ids
    transcript = sorted(distinct.values(), key=lambda m: m["timestamp"])
    assert [(m["role"], m["content"]) for m in transcript] == [
        ("user", "Weather in Paris?"),
        ("agent", 'get_weather({"city":"Paris"})'),
        ("agent", "Sunny."),
    ]
    assert transcript[2]["metadata"]["finish_reason"] == "stop"


def test_it_reads_the_older_genai_event_and_attribute_forms() -> None:
    s = span(ROOT, "chat", **{"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi"})
    s.events = [
        SpanEvent("gen_ai.system.message", T0, {"content": "be brief"}),
        SpanEvent(
            "gen_ai.choice", T0 + 10, {"message": json.dumps({"role": "assistant", "content": "hello"})}
        ),
    ]
    messages = by_type(map_spans([s]).events, "thread.message")
    assert sorted((m["role"], m["content"]) for m in messages) == [
        ("agent", "hello"),
        ("system", "be brief"),
        ("user", "hi"),
    ]
    assert "events" not in by_type(map_spans([s]).events, "thread.step")[0]["details"]


def test_it_derives_the_same_event_ids_from_the_same_export() -> None:
    spans = [span(ROOT, "root"), span(TOOL, "execute_tool x", ROOT, **{"gen_ai.tool.name": "x"})]
    assert [e["id"] for e in map_spans(spans).events] == [e["id"] for e in map_spans(spans).events]


def test_it_rejects_spans_with_invalid_ids_and_keeps_the_rest() -> None:
    bad = span("zz", "broken")
    mapped = map_spans([bad, span(ROOT, "fine")])
    assert mapped.rejected == {0: "span 'broken': invalid span id 'zz'"}
    assert set(mapped.origins) == {1}


def test_a_key_bound_to_a_server_names_the_server() -> None:
    (started, *_) = map_spans([span(ROOT, "root")], mcp_id="srv-alpha").events
    assert started["mcp_id"] == "srv-alpha"


def test_it_maps_log_records_to_log_entries_of_the_traces_thread() -> None:
    record = LogRecord(
        time_ns=T0,
        body="tool failed",
        severity_number=17,
        attributes={"exception.type": "ValueError", "exception.message": "bad", "code.lineno": 3},
        trace_id=TRACE,
        span_id=TOOL,
        resource={"service.name": "weather-agent"},
        scope="weather",
    )
    mapped = map_logs([record, LogRecord(time_ns=0, body={"k": 1}, severity_text="warning")], now_ns=T0)
    first, second = mapped.events
    assert first["type"] == "log" and first["level"] == "ERROR" and first["thread_id"] == f"otel-{TRACE}"
    assert first["message"] == "tool failed" and first["service"] == "weather-agent"
    assert first["exception"] == "ValueError: bad"
    assert first["context"]["attributes"]["code.lineno"] == 3 and first["context"]["span_id"] == TOOL
    assert second["level"] == "WARN" and second["thread_id"] is None and second["message"] == '{"k":1}'
    assert second["mcp_id"] == "unknown_service" and second["timestamp"] == first["timestamp"]
    assert [e["id"] for e in map_logs([record]).events] == [first["id"]]


def test_genai_event_log_records_become_transcript_messages() -> None:
    record = LogRecord(time_ns=T0, event_name="gen_ai.user.message", body={"content": "hi"}, trace_id=TRACE)
    (message,) = map_logs([record]).events
    assert message["type"] == "thread.message" and message["role"] == "user" and message["content"] == "hi"


def test_severity_numbers_map_to_levels() -> None:
    assert [level(n, "") for n in (1, 5, 9, 13, 17, 21)] == [
        "DEBUG",
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
        "ERROR",
    ]
    assert level(0, "Error") == "ERROR" and level(0, "") == "INFO"
