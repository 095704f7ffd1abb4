"""OpenTelemetry spans and log records as Mission Control events: a pure mapping, no I/O.

The receiver decodes OTLP into `Span` and `LogRecord` and stores what this module
returns through the ordinary ingest pipeline, so OTLP data gets the same validation,
idempotency, redaction and live fan-out as pushed events.

Threads:
- a trace is a thread, `otel-<trace id>`; its root span starts and ends it;
- a trace whose spans carry `session.id`, `mcp.session.id` or `gen_ai.conversation.id`
  (on the span or its resource) is the child of that session's thread,
  `otel-session-<id>`, so each turn (or MCP request) keeps its own thread while the
  session gathers them; log records of the trace still land on the trace's thread;
- an agent span (`gen_ai.operation.name` = invoke_agent / create_agent) below the root
  is a child thread, `otel-<trace id>-<span id>`, of the thread enclosing it, and the
  spans below it (in the same export) are its steps. A root agent span is the trace's
  thread itself.

Every other span is a step of its thread: `tool_call` for tool executions (GenAI
execute_tool, a `gen_ai.tool.name`, MCP `tools/call`), `script` for the rest (LLM calls,
MCP protocol requests, plain work); the GenAI/MCP reading of the span is in `details`
with the attributes that have no mapping. An LLM call's `gen_ai.usage.*` token counts
are its step's `details.usage` (by their last part), with the model and the user
(`user.id` / `enduser.id`) beside them: what the usage report sums. A step's sequence
is its start time in microseconds modulo 2**31: stable when an export is re-sent (the
step is stored once) and ordered like the spans, except across the wrap every 35 minutes.

Event ids derive from trace and span ids (and, for log records, a digest of the
record), so a re-sent export stores nothing twice. Transcript messages are identified
by thread, position in the conversation and content, so the history an LLM call
repeats in every request is stored once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from missioncontrol.jsontext import JSONDecodeError, dumps, loads

SESSION_KEYS = ("session.id", "mcp.session.id", "gen_ai.conversation.id")
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
SEQUENCE_MODULUS = 2**31
MAX_SERVICE = 100
MAX_ID = 200
UNKNOWN_SERVICE = "unknown_service"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Older GenAI event forms (span events or log records) and the role each one carries.
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
    "gen_ai.choice": "assistant",
}
_ROLES = {"user": "user", "assistant": "agent", "model": "agent", "tool": "tool", "system": "system"}
_ROLES["developer"] = "system"
_FLATTENED = ("gen_ai.prompt.", "gen_ai.completion.")


@dataclass(slots=True)
class SpanEvent:
    """An event recorded on a span."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    """One decoded span with its resource's attributes; ids are lower-case hex."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str = ""
    kind: str = "internal"
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: str = "unset"  # unset, ok, error
    status_message: str = ""
    events: list[SpanEvent] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


@dataclass(slots=True)
class LogRecord:
    """One decoded log record with its resource's attributes; ids are lower-case hex or ''."""

    time_ns: int
    body: Any = None
    severity_number: int = 0
    severity_text: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    observed_ns: int = 0
    event_name: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


@dataclass
class Mapped:
    """Events for the pipeline (their timestamps UTC datetimes, which it takes as they
    are), the item (span or record index) each came from, and the items refused before
    the pipeline saw them, with the reason."""

    events: list[dict[str, Any]] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)

    def add(self, origin: int, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.origins.append(origin)


def trace_thread_id(trace_id: str) -> str:
    return f"otel-{trace_id}"


def session_thread_id(session: str) -> str:
    if len(session) <= 100 and session.isprintable():
        return f"otel-session-{session}"
    return f"otel-session-{_digest(session)}"


def instant(ns: int) -> datetime:
    """The UTC time of nanoseconds since the epoch (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def timestamp(ns: int) -> str:
    """An ISO 8601 string for nanoseconds since the epoch (microsecond precision)."""
    return instant(ns).isoformat()


def _digest(value: Any) -> str:
    text = value if isinstance(value, str) else dumps(value)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _is_hex_id(value: str, length: int) -> bool:
    if len(value) != length or value.strip("0") == "":
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


def _server(mcp_id: str | None, resource: Mapping[str, Any]) -> str:
    if mcp_id:
        return mcp_id
    name = resource.get("service.name")
    return str(name)[:MAX_ID] if name else UNKNOWN_SERVICE


def _service(resource: Mapping[str, Any], scope: str) -> str:
    name = resource.get("service.name") or scope or UNKNOWN_SERVICE
    return str(name)[:MAX_SERVICE]


def _json_value(value: Any) -> Any:
    """A JSON string attribute (GenAI messages, tool arguments) as data; anything else as is."""
    if isinstance(value, str | bytes):
        try:
            return loads(value)
        except JSONDecodeError:
            return value
    return value


def _session(span: Span) -> str | None:
    for key in SESSION_KEYS:
        value = span.attributes.get(key) or span.resource.get(key)
        if value:
            return str(value)
    return None


def _is_agent(span: Span) -> bool:
    return span.attributes.get("gen_ai.operation.name") in AGENT_OPERATIONS


def _is_error(span: Span) -> bool:
    return span.status_code == "error" or bool(span.attributes.get("error.type"))


# --- transcript ---------------------------------------------------------------------


def _content(parts: Any) -> str:
    """The readable text of a GenAI message's parts (or of an older `content` value)."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return "" if parts is None else dumps(parts)
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            texts.append(str(part))
        elif part.get("type") == "text" or "content" in part:
            texts.append(str(part.get("content", "")))
        elif part.get("type") == "tool_call":
            texts.append(f"{part.get('name', 'tool')}({dumps(part.get('arguments'))})")
        elif part.get("type") == "tool_call_response":
            response = part.get("response")
            texts.append(response if isinstance(response, str) else dumps(response))
        else:
            texts.append(dumps(part))
    return "\n".join(t for t in texts if t)


@dataclass(slots=True)
class _Message:
    role: str
    content: str
    metadata: dict[str, Any]


def _message(raw: Any) -> _Message | None:
    if not isinstance(raw, dict):
        return None if raw is None else _Message("user", _content(raw), {})
    role = _ROLES.get(str(raw.get("role", "")), "agent")
    parts = raw.get("parts", raw.get("content"))
    metadata = {k: v for k, v in raw.items() if k not in ("role", "content")}
    if isinstance(parts, str):
        metadata.pop("parts", None)
    return _Message(role, _content(parts), metadata)


def _as_list(value: Any) -> list[Any]:
    value = _json_value(value)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _indexed(attributes: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenLLMetry's flattened `gen_ai.prompt.<i>.role` / `.content` attributes (and
    `gen_ai.completion.<i>.*`): the prompt's messages and the completion's, in one pass."""
    found: tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]] = ({}, {})
    for key, value in attributes.items():
        if key.startswith(_FLATTENED):
            which = 0 if key.startswith("gen_ai.prompt.") else 1
            index, _, name = key[len(_FLATTENED[which]) :].partition(".")
            if index.isdigit() and name in ("role", "content"):
                found[which].setdefault(int(index), {})[name] = value
    prompts, completions = found
    return [prompts[i] for i in sorted(prompts)], [completions[i] for i in sorted(completions)]


def _event_message(name: str, attributes: Mapping[str, Any], body: Any = None) -> _Message | None:
    role = _MESSAGE_EVENTS[name]
    source = body if isinstance(body, dict) else dict(attributes)
    if name == "gen_ai.choice":
        source = _json_value(source.get("message", source))
        if not isinstance(source, dict):
            source = {"content": source}
    content = source.get("content", body if isinstance(body, str) else None)
    extra = {k: v for k, v in source.items() if k not in ("content", "role")}
    return _Message(_ROLES.get(str(source.get("role", role)), "agent"), _content(_json_value(content)), extra)


def _span_messages(span: Span) -> tuple[list[_Message], list[_Message], list[SpanEvent]]:
    """The span's input and output messages, and the span events that were not messages."""
    attrs = span.attributes
    inputs = [m for m in map(_message, _as_list(attrs.get("gen_ai.input.messages"))) if m]
    outputs = [m for m in map(_message, _as_list(attrs.get("gen_ai.output.messages"))) if m]
    prompts, completions = _indexed(attrs)
    inputs += [m for m in map(_message, prompts) if m]
    outputs += [m for m in map(_message, completions) if m]
    others: list[SpanEvent] = []
    for ev in span.events:
        if ev.name in _MESSAGE_EVENTS:
            message = _event_message(ev.name, ev.attributes)
            if message:
                (outputs if ev.name == "gen_ai.choice" else inputs).append(message)
        else:
            others.append(ev)
    system = _as_list(attrs.get("gen_ai.system_instructions"))
    if system:
        inputs.insert(0, _Message("system", _content(system), {}))
    return inputs, outputs, others


def _message_events(
    origin: int,
    thread_id: str,
    messages: Iterable[_Message],
    first_position: int,
    at_ns: int,
    metadata: dict[str, Any],
    out: Mapped,
) -> None:
    for offset, message in enumerate(messages):
        position = first_position + offset
        key = _digest(f"{message.role}\x00{message.content}")
        out.add(
            origin,
            {
                "id": f"otel-msg:{thread_id}:{position}:{key}",
                "type": "thread.message",
                # One microsecond apart: the transcript keeps the conversation's order.
                "timestamp": instant(at_ns + offset * 1000),
                "thread_id": thread_id,
                "role": message.role,
                "content": message.content,
                "metadata": {**metadata, **message.metadata},
            },
        )


# --- spans --------------------------------------------------------------------------

_STEP_KEYS = frozenset(
    (
        "gen_ai.operation.name",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.type",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.agent.name",
        "gen_ai.agent.id",
        "mcp.method.name",
        "mcp.session.id",
        "mcp.protocol.version",
        "jsonrpc.request.id",
        "error.type",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "user.id",
        "enduser.id",
    )
)
# Who an LLM call ran for (the usage page's "user"): the span's, else its resource's.
USER_KEYS = ("user.id", "enduser.id")


def _category(op: Any, tool: Any, method: Any) -> str:
    if op == "execute_tool" or tool or method == "tools/call":
        return "tool"
    if op in LLM_OPERATIONS:
        return "llm"
    if op in AGENT_OPERATIONS:
        return "agent"
    if method:
        return "mcp"
    return "span"


def _usage_and_unmapped(attributes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`gen_ai.usage.*` by their last part, and the attributes no part of a step maps."""
    usage: dict[str, Any] = {}
    unmapped: dict[str, Any] = {}
    for k, v in attributes.items():
        if k in _STEP_KEYS:
            continue
        if k.startswith("gen_ai."):
            if k.startswith("gen_ai.usage."):
                usage[k[len("gen_ai.usage.") :]] = v
                continue
            if k.startswith(_FLATTENED):
                continue
        unmapped[k] = v
    return usage, unmapped


def _user(span: Span) -> str | None:
    for source in (span.attributes, span.resource):
        for key in USER_KEYS:
            if source.get(key):
                return str(source[key])
    return None


def _step_details(span: Span, other_events: list[SpanEvent]) -> tuple[str, dict[str, Any]]:
    attrs = span.attributes
    op, method = attrs.get("gen_ai.operation.name"), attrs.get("mcp.method.name")
    tool = attrs.get("gen_ai.tool.name")
    if not tool and method == "tools/call":
        # The mcp SDK's client span names the tool only in its name: "MCP send tools/call <tool>".
        _, _, tool = span.name.partition("tools/call ")
    category = _category(op, tool, method)
    usage, unmapped = _usage_and_unmapped(attrs)
    details: dict[str, Any] = {
        "source": "otlp",
        "category": category,
        "operation": op,
        "tool": tool or None,
        "arguments": _json_value(attrs.get("gen_ai.tool.call.arguments")),
        "result": _json_value(attrs.get("gen_ai.tool.call.result")),
        "tool_call_id": attrs.get("gen_ai.tool.call.id"),
        "model": attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model"),
        "provider": attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system"),
        "agent": attrs.get("gen_ai.agent.name"),
        "user": _user(span),
        "mcp_method": method,
        "mcp_session_id": attrs.get("mcp.session.id"),
        "mcp_protocol_version": attrs.get("mcp.protocol.version"),
        "jsonrpc_request_id": attrs.get("jsonrpc.request.id"),
        "error_type": attrs.get("error.type"),
        "status_message": span.status_message or None,
        "usage": usage,
        "otel": {
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id or None,
            "kind": span.kind,
            "scope": span.scope or None,
            "status": span.status_code,
        },
        "attributes": unmapped,
        "events": [{"name": e.name, "timestamp": timestamp(e.time_ns), **e.attributes} for e in other_events],
    }
    details = {k: v for k, v in details.items() if v not in (None, {}, [])}
    return ("tool_call" if category == "tool" else "script"), details


def _execution_context(span: Span) -> dict[str, Any]:
    attrs = span.attributes
    context = {
        "source": "otlp",
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "span_name": span.name,
        "agent": {
            k: attrs[f"gen_ai.agent.{k}"]
            for k in ("name", "id", "description")
            if f"gen_ai.agent.{k}" in attrs
        },
        "session": _session(span),
        "resource": span.resource,
    }
    return {k: v for k, v in context.items() if v not in (None, {}, "")}


class _Threads:
    """Which thread each span of one export belongs to."""

    def __init__(self, spans: list[Span]) -> None:
        self.by_id = {(s.trace_id, s.span_id): s for s in spans}
        self.sessions: dict[str, str] = {}
        for span in sorted(spans, key=lambda s: s.parent_span_id != ""):  # roots first
            session = _session(span)
            if session and span.trace_id not in self.sessions:
                self.sessions[span.trace_id] = session
        self._scopes: dict[tuple[str, str], str] = {}

    def own(self, span: Span) -> str:
        """The thread an agent span opens (a root span's is the trace's thread)."""
        if not span.parent_span_id:
            return trace_thread_id(span.trace_id)
        return f"otel-{span.trace_id}-{span.span_id}"

    def enclosing(self, span: Span) -> str:
        """The thread of the nearest agent span above `span` in this export, else the trace's."""
        chain: list[tuple[str, str]] = []
        key = (span.trace_id, span.parent_span_id)
        thread = trace_thread_id(span.trace_id)
        while key[1]:
            if key in self._scopes:
                thread = self._scopes[key]
                break
            parent = self.by_id.get(key)
            if parent is None or key in chain:
                break
            chain.append(key)
            if _is_agent(parent):
                thread = self.own(parent)
                break
            key = (parent.trace_id, parent.parent_span_id)
        for link in chain:
            self._scopes[link] = thread
        return thread

    def parent_of_trace(self, trace_id: str) -> str | None:
        session = self.sessions.get(trace_id)
        return session_thread_id(session) if session else None


def map_spans(spans: list[Span], mcp_id: str | None = None) -> Mapped:
    """The events for one export of spans; `mcp_id` is the ingest key's server, if bound."""
    out = Mapped()
    valid: list[tuple[int, Span]] = []
    for index, span in enumerate(spans):
        if not _is_hex_id(span.trace_id, 32):
            out.rejected[index] = f"span {span.name!r}: invalid trace id {span.trace_id!r}"
        elif not _is_hex_id(span.span_id, 16):
            out.rejected[index] = f"span {span.name!r}: invalid span id {span.span_id!r}"
        elif span.parent_span_id and not _is_hex_id(span.parent_span_id, 16):
            out.rejected[index] = f"span {span.name!r}: invalid parent span id {span.parent_span_id!r}"
        else:
            valid.append((index, span))
    threads = _Threads([s for _, s in valid])
    for index, span in valid:
        _map_span(index, span, threads, mcp_id, out)
    return out


def _map_span(index: int, span: Span, threads: _Threads, mcp_id: str | None, out: Mapped) -> None:
    base = f"otel:{span.trace_id}:{span.span_id}"
    server = _server(mcp_id, span.resource)
    inputs, outputs, other_events = _span_messages(span)
    is_root, is_agent = not span.parent_span_id, _is_agent(span)
    status = "error" if _is_error(span) else "complete"

    if is_root or is_agent:
        thread = threads.own(span)
        parent = threads.parent_of_trace(span.trace_id) if is_root else threads.enclosing(span)
        if is_root and parent:
            session = threads.sessions[span.trace_id]
            out.add(
                index,
                {
                    "id": f"otel:session:{_digest(session)}:started",
                    "type": "thread.started",
                    "timestamp": instant(span.start_ns),
                    "thread_id": parent,
                    "mcp_id": server,
                    "user_input": f"session {session}",
                    "execution_context": {"source": "otlp", "session": session, "resource": span.resource},
                },
            )
        first_user = next((m.content for m in inputs if m.role == "user" and m.content), None)
        out.add(
            index,
            {
                "id": f"{base}:started",
                "type": "thread.started",
                "timestamp": instant(span.start_ns),
                "thread_id": thread,
                "parent_id": parent,
                "mcp_id": server,
                "user_input": first_user or span.name,
                "execution_context": _execution_context(span),
            },
        )
        out.add(
            index,
            {
                "id": f"{base}:ended",
                "type": "thread.ended",
                "timestamp": instant(span.end_ns),
                "thread_id": thread,
                "status": status,
            },
        )
    else:
        thread = threads.enclosing(span)

    if not is_agent:
        step_type, details = _step_details(span, other_events)
        duration = (span.end_ns - span.start_ns) / 1e6
        out.add(
            index,
            {
                "id": base,
                "type": "thread.step",
                "timestamp": instant(span.start_ns),
                "thread_id": thread,
                "sequence": (span.start_ns // 1000) % SEQUENCE_MODULUS,
                "step_type": step_type,
                "description": span.name,
                "details": details,
                "status": status,
                "duration_ms": duration if duration >= 0 else None,
            },
        )

    metadata = {"trace_id": span.trace_id, "span_id": span.span_id}
    _message_events(index, thread, inputs, 0, span.start_ns, metadata, out)
    _message_events(index, thread, outputs, len(inputs), span.end_ns, metadata, out)


# --- log records --------------------------------------------------------------------

_TEXT_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN"}
_TEXT_LEVELS |= {"ERROR": "ERROR", "FATAL": "ERROR", "CRITICAL": "ERROR"}


def level(severity_number: int, severity_text: str) -> str:
    """OTLP severity (1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-24 ERROR/FATAL) as ours."""
    if severity_number >= 17:
        return "ERROR"
    if severity_number >= 13:
        return "WARN"
    if severity_number >= 9:
        return "INFO"
    if severity_number >= 1:
        return "DEBUG"
    return _TEXT_LEVELS.get(severity_text.upper().rstrip("0123456789"), "INFO")


def _exception(attributes: dict[str, Any]) -> str | None:
    stack = attributes.get("exception.stacktrace")
    if stack:
        return str(stack)
    kind, message = attributes.get("exception.type"), attributes.get("exception.message")
    if kind or message:
        return f"{kind or 'Exception'}: {message or ''}".rstrip(": ")
    return None


def map_logs(records: list[LogRecord], mcp_id: str | None = None, now_ns: int = 0) -> Mapped:
    """The events for one export of log records; `now_ns` stamps records that carry no time."""
    out = Mapped()
    for index, record in enumerate(records):
        trace_ok = _is_hex_id(record.trace_id, 32) if record.trace_id else True
        span_ok = _is_hex_id(record.span_id, 16) if record.span_id else True
        if not trace_ok or not span_ok:
            out.rejected[index] = f"log record {index}: invalid trace or span id"
            continue
        thread = trace_thread_id(record.trace_id) if record.trace_id else None
        at = record.time_ns or record.observed_ns or now_ns
        identity = [record.trace_id, record.span_id, at, record.severity_number, record.severity_text]
        identity += [record.body, record.attributes, record.event_name, record.scope, record.resource]
        digest = _digest(identity)
        if record.event_name in _MESSAGE_EVENTS and thread:
            message = _event_message(record.event_name, record.attributes, record.body)
            if message:
                out.add(
                    index,
                    {
                        "id": f"otel-msg:{digest}",
                        "type": "thread.message",
                        "timestamp": instant(at),
                        "thread_id": thread,
                        "role": message.role,
                        "content": message.content,
                        "metadata": {
                            "trace_id": record.trace_id,
                            "span_id": record.span_id,
                            **message.metadata,
                        },
                    },
                )
                continue
        attributes = dict(record.attributes)
        exception = _exception(attributes)
        body = record.body
        text = body if isinstance(body, str) else ("" if body is None else dumps(body))
        context: dict[str, Any] = {"source": "otlp", "attributes": attributes}
        for name, value in (
            ("trace_id", record.trace_id),
            ("span_id", record.span_id),
            ("event_name", record.event_name),
            ("severity_text", record.severity_text),
            ("scope", record.scope),
        ):
            if value:
                context[name] = value
        if not isinstance(body, str | type(None)):
            context["body"] = body
        context["resource"] = record.resource
        out.add(
            index,
            {
                "id": f"otel-log:{digest}",
                "type": "log",
                "timestamp": instant(at),
                "level": level(record.severity_number, record.severity_text),
                "service": _service(record.resource, record.scope),
                "thread_id": thread,
                "mcp_id": _server(mcp_id, record.resource),
                "message": text or record.event_name or "(empty log record)",
                "context": context,
                "exception": exception,
            },
        )
    return out
