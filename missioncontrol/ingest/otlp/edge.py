"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs, a bare ASGI endpoint like the ingest edge.

Written for speed on purpose, like `missioncontrol.ingest.edge`: no Django request
cycle; one executor thread authenticates, decodes, maps and stores an export in one
transaction through `pipeline.ingest`, and only then (2xx) are the events published.

Requests: `Content-Type: application/x-protobuf` or `application/json` (OTLP/JSON),
optionally `Content-Encoding: gzip`; the ingest key as `Authorization: Bearer <key>`
or `X-API-Key: <key>` (for exporters configured through OTEL_EXPORTER_OTLP_HEADERS).

Answers, in the request's encoding: 200 with an Export{Trace,Logs}ServiceResponse,
whose partial_success counts the spans or log records refused and says why; otherwise
a google.rpc.Status: 400 for an undecodable body, 401 for a missing or unknown key,
405, 413 for a body over the limit (compressed or not), 415 for another content type
or encoding, 429 with Retry-After past the key's rate (rate_limits.otlp; the Status is
RESOURCE_EXHAUSTED with a RetryInfo, as OTLP exporters expect of a throttled export),
503 with Retry-After when the database is unreachable.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from mcps.models import IngestKey
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.http import Answer, ingest_key, read_body, respond
from missioncontrol.ingest.otlp import decode
from missioncontrol.ingest.otlp.mapping import Mapped, map_logs, map_spans
from missioncontrol.ingest.pipeline import IngestResult, ingest
from missioncontrol.ratelimit import acheck_otlp

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
SIGNALS: dict[str, decode.Signal] = {"/v1/traces": "traces", "/v1/logs": "logs"}
_CONTENT_TYPES: dict[str, decode.Encoding] = {
    "application/x-protobuf": "protobuf",
    "application/json": "json",
}
_CODES = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 405: code_pb2.UNIMPLEMENTED}
_CODES |= {413: code_pb2.RESOURCE_EXHAUSTED, 415: code_pb2.INVALID_ARGUMENT, 503: code_pb2.UNAVAILABLE}
_CODES[429] = code_pb2.RESOURCE_EXHAUSTED
_CODES[500] = code_pb2.INTERNAL


class Refusal(Answer):
    """An answer other than an export response, as OTLP words it; `details`: protobuf
    messages for the google.rpc.Status's details."""

    def __init__(self, status: int, message: str, details: tuple[Any, ...] = (), **headers: str) -> None:
        super().__init__(status, None, message, **headers)
        self.details = details


def _status(answer: Answer) -> status_pb2.Status:
    """The google.rpc.Status of an answer (a Refusal's, or one the shared edge helpers gave)."""
    status = status_pb2.Status(code=_CODES.get(answer.status, code_pb2.UNKNOWN), message=answer.message)
    for detail in getattr(answer, "details", ()):
        packed = AnyMessage()
        packed.Pack(detail)
        status.details.append(packed)
    return status


@dataclass(frozen=True, slots=True)
class Outcome:
    result: IngestResult
    rejected: int
    error_message: str


def _count_rejected(mapped: Mapped, result: IngestResult) -> tuple[int, str]:
    """Spans (or records) refused by the mapping or with any event refused by the pipeline;
    the message also names values stored escaped (a warning: OTLP's partial success may
    carry one with nothing rejected)."""
    reasons = dict(mapped.rejected)
    escaped: dict[int, str] = {}
    for verdict in result.verdicts:
        origin = mapped.origins[verdict.index]
        if verdict.status == "rejected":
            reasons.setdefault(origin, f"item {origin}: {verdict.field}: {verdict.reason}")
        elif verdict.escaped:
            note = verdict.escaped[0]
            escaped.setdefault(origin, f"item {origin}: {note['field']}: {note['reason']}")
    notes = {**escaped, **reasons}
    if not notes:
        return 0, ""
    shown = [notes[i] for i in sorted(notes)[:5]]
    more = f" (and {len(notes) - 5} more)" if len(notes) > 5 else ""
    return len(reasons), "; ".join(shown) + more


def receive_export(signal: decode.Signal, encoding: decode.Encoding, raw_key: str, body: bytes) -> Outcome:
    """Authenticate, decode, map and store one export."""
    close_old_connections()  # executor threads keep their connections: drop broken ones
    try:
        key = IngestKey.objects.authenticate(raw_key)
        if key is None:
            raise Refusal(401, "unknown or revoked ingest key", WWW_Authenticate="Bearer")
        key.touch()
        try:
            request = decode.parse(signal, encoding, body)
        except decode.Undecodable as exc:
            raise Refusal(400, str(exc)) from exc
        if signal == "traces":
            mapped = map_spans(decode.spans(request), key.mcp_id)  # type: ignore[arg-type]
        else:
            mapped = map_logs(decode.log_records(request), key.mcp_id, now_ns=time.time_ns())  # type: ignore[arg-type]
        result = ingest(mapped.events, Source(mcp_id=key.mcp_id, team_id=key.team_id))
        rejected, message = _count_rejected(mapped, result)
        return Outcome(result, rejected, message)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("otlp: database unavailable: %s", exc)
        raise Refusal(
            503, "the database is unavailable; retry later", Retry_After=str(RETRY_AFTER_SECONDS)
        ) from exc
    finally:
        try:
            close_old_connections()
        except DatabaseError:
            logger.debug("otlp: closing a broken connection failed", exc_info=True)


def _content_type(headers: dict[bytes, bytes]) -> str:
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


def _encoding(headers: dict[bytes, bytes]) -> decode.Encoding:
    content_type = _content_type(headers)
    if content_type not in _CONTENT_TYPES:
        raise Refusal(
            415, f"unsupported Content-Type {content_type!r}; use application/x-protobuf or application/json"
        )
    return _CONTENT_TYPES[content_type]


def _gunzip(body: bytes, limit: int) -> bytes:
    # Bounded: a small gzip bomb must not expand past the body limit in memory.
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Refusal(400, f"not a valid gzip body: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise Refusal(413, f"body larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise Refusal(400, "not a valid gzip body: truncated")
    return out


async def _handle(
    signal: decode.Signal, scope: dict[str, Any], receive: Any
) -> tuple[Outcome, decode.Encoding]:
    if scope["method"] != "POST":
        raise Refusal(405, "use POST", Allow="POST")
    headers = dict(scope["headers"])
    encoding = _encoding(headers)
    raw_key = ingest_key(headers, api_key_header=True)
    if not raw_key:
        raise Refusal(
            401, "missing 'Authorization: Bearer <ingest key>' (or X-API-Key)", WWW_Authenticate="Bearer"
        )
    # Before the key is looked up or the body read: a flood costs neither.
    denied = await acheck_otlp(raw_key)
    if denied is not None:
        retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=denied.retry_after))
        raise Refusal(429, denied.reason, (retry,), Retry_After=str(denied.retry_after))
    content_encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
    if content_encoding not in ("identity", "gzip", ""):
        raise Refusal(415, f"unsupported Content-Encoding {content_encoding!r}; use gzip or none")
    limit = settings.INGEST_MAX_BODY_BYTES
    body = await read_body(headers, receive, limit)
    if content_encoding == "gzip":
        body = _gunzip(body, limit)
    outcome = await sync_to_async(receive_export, thread_sensitive=False)(signal, encoding, raw_key, body)
    await outcome.result.outbox.send()  # committed: only now do subscribers hear of it
    return outcome, encoding


async def otlp_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI application mounted at /v1/traces and /v1/logs."""
    signal = SIGNALS[scope["path"].rstrip("/")]
    # Refusals answer in the request's encoding when it is one of ours, else in JSON.
    encoding = _CONTENT_TYPES.get(_content_type(dict(scope["headers"])), "json")
    try:
        outcome, encoding = await _handle(signal, scope, receive)
        body, content_type = decode.response(signal, encoding, outcome.rejected, outcome.error_message)
        await respond(send, 200, body, content_type, {})
    except Answer as answer:
        body, content_type = decode.serialize(_status(answer), encoding)
        await respond(send, answer.status, body, content_type, answer.headers)
    except ConnectionAbortedError:
        return
    except Exception:
        logger.exception("otlp: unexpected error")
        status = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
        body, content_type = decode.serialize(status, encoding)
        await respond(send, 500, body, content_type, {})
