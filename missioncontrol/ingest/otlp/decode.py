"""OTLP request bodies (protobuf or OTLP/JSON) as `mapping.Span` and `mapping.LogRecord`.

Both encodings go through the opentelemetry-proto messages: a JSON body is parsed into
the same protobuf message (OTLP/JSON is protobuf's JSON mapping, except that trace and
span ids are hex, not base64), so one walk turns either into plain Python values.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from missioncontrol.ingest import storable
from missioncontrol.ingest.otlp.mapping import LogRecord, Span, SpanEvent
from missioncontrol.jsontext import JSONDecodeError

Signal = Literal["traces", "logs"]
Encoding = Literal["protobuf", "json"]
_KINDS = {v: k.removeprefix("SPAN_KIND_").lower() for k, v in ProtoSpan.SpanKind.items()}
_STATUS = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class Undecodable(Exception):
    """The body is not a valid OTLP export request; the message says why."""


def value(v: AnyValue) -> Any:
    """An AnyValue as a plain Python value."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value(item) for item in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = value(pair.value)
    return out


def _hex_to_base64(obj: dict[str, Any], path: str) -> None:
    for name in _ID_FIELDS:
        raw = obj.get(name)
        if isinstance(raw, str) and raw:
            try:
                obj[name] = base64.b64encode(bytes.fromhex(raw)).decode()
            except ValueError:
                raise Undecodable(f"{path}.{name}: not a hex string: {raw[:40]!r}") from None


def _items(obj: Any, name: str) -> list[Any]:
    """A repeated field of a JSON object, under its camelCase or snake_case name."""
    if not isinstance(obj, dict):
        return []
    found = obj.get(name, obj.get(_snake(name)))
    return found if isinstance(found, list) else []


def _json_ids(data: dict[str, Any], signal: Signal) -> None:
    """OTLP/JSON's hex ids as the base64 protobuf's JSON mapping expects, in place."""
    outer, middle, inner = (
        ("resourceSpans", "scopeSpans", "spans")
        if signal == "traces"
        else ("resourceLogs", "scopeLogs", "logRecords")
    )
    for r, resource in enumerate(_items(data, outer)):
        for s, scope in enumerate(_items(resource, middle)):
            for i, item in enumerate(_items(scope, inner)):
                if not isinstance(item, dict):
                    continue
                path = f"{outer}[{r}].{middle}[{s}].{inner}[{i}]"
                _hex_to_base64(item, path)
                for n, link in enumerate(_items(item, "links")):
                    if isinstance(link, dict):
                        _hex_to_base64(link, f"{path}.links[{n}]")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def parse(signal: Signal, encoding: Encoding, body: bytes) -> Message:
    """The export request in `body`, or Undecodable with the reason."""
    message: Message = ExportTraceServiceRequest() if signal == "traces" else ExportLogsServiceRequest()
    if encoding == "protobuf":
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise Undecodable(f"not a protobuf {type(message).__name__}: {exc}") from exc
        return message
    try:
        data = storable.loads(body, escape_now=True) if body else {}
    except JSONDecodeError as exc:
        raise Undecodable(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Undecodable(f"expected a JSON object ({type(message).__name__}), got {type(data).__name__}")
    _json_ids(data, signal)
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise Undecodable(f"not an OTLP/JSON {type(message).__name__}: {exc}") from exc
    return message


def spans(request: ExportTraceServiceRequest) -> list[Span]:
    out: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for s in scope_spans.spans:
                out.append(
                    Span(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        name=s.name,
                        kind=_KINDS.get(s.kind, "unspecified"),
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes=attributes(s.attributes),
                        status_code=_STATUS.get(s.status.code, "unset"),
                        status_message=s.status.message,
                        events=[
                            SpanEvent(e.name, e.time_unix_nano, attributes(e.attributes)) for e in s.events
                        ],
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


def log_records(request: ExportLogsServiceRequest) -> list[LogRecord]:
    out: list[LogRecord] = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for r in scope_logs.log_records:
                out.append(
                    LogRecord(
                        time_ns=r.time_unix_nano,
                        observed_ns=r.observed_time_unix_nano,
                        body=value(r.body) if r.HasField("body") else None,
                        severity_number=r.severity_number,
                        severity_text=r.severity_text,
                        attributes=attributes(r.attributes),
                        trace_id=r.trace_id.hex(),
                        span_id=r.span_id.hex(),
                        event_name=r.event_name,
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


def response(signal: Signal, encoding: Encoding, rejected: int, error_message: str) -> tuple[bytes, str]:
    """The Export*ServiceResponse body and its content type; partial_success when rejected."""
    message: Message = ExportTraceServiceResponse() if signal == "traces" else ExportLogsServiceResponse()
    if rejected or error_message:
        partial = message.partial_success  # type: ignore[attr-defined]
        if signal == "traces":
            partial.rejected_spans = rejected
        else:
            partial.rejected_log_records = rejected
        partial.error_message = error_message
    return serialize(message, encoding)


def serialize(message: Message, encoding: Encoding) -> tuple[bytes, str]:
    if encoding == "protobuf":
        return message.SerializeToString(), "application/x-protobuf"
    return json_format.MessageToJson(message, indent=None).encode(), "application/json"
