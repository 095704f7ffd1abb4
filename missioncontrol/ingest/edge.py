"""POST /api/ingest/events: a bare ASGI endpoint over `pipeline.ingest`.

The hottest endpoint skips Django's request cycle: it needs no session, CSRF or user
(the bearer ingest key is its authentication), and each of Django's sync middlewares
is a hop to the one thread-sensitive executor thread and back to the event loop, paid
twice per request and queued behind live fan-out. Here a request costs one hop: an
executor thread authenticates, parses, validates and stores the batch in one
transaction; the loop then publishes the committed events and answers.

Answers: 200 with a verdict per event (400 if every event was rejected); 401 for a
missing, unknown or revoked key; 405 for another method; 413 for a body or batch over
the limits (the body is not read past the limit); 400 for a body that is not a JSON
object with an `events` array; 503 with Retry-After when the database is unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from mcps.models import IngestKey
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest
from missioncontrol.jsontext import JSONDecodeError, dumps, loads

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


class Answer(Exception):
    """An HTTP answer other than the batch's verdicts."""

    def __init__(self, status: int, field: str | None, reason: str, **headers: str) -> None:
        super().__init__(reason)
        self.status = status
        self.body = {"error": {"field": field, "reason": reason}}
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}


def _authenticate(raw_key: str) -> IngestKey:
    key = IngestKey.objects.authenticate(raw_key)
    if key is None:
        raise Answer(401, "Authorization", "unknown or revoked ingest key", WWW_Authenticate="Bearer")
    key.touch()
    return key


def _parse(body: bytes) -> list[Any]:
    try:
        data = loads(body)
    except JSONDecodeError as exc:
        raise Answer(400, "body", f"not valid JSON: {exc}") from exc
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise Answer(400, "events", "required, an array of events")
    if len(events) > settings.INGEST_MAX_EVENTS:
        raise Answer(413, "events", f"more than {settings.INGEST_MAX_EVENTS} events in one batch")
    return events


def receive_batch(raw_key: str, body: bytes) -> tuple[IngestResult, int]:
    """Authenticate, parse and store one batch; (result, number of events received)."""
    # Executor threads keep their connections: drop broken or expired ones around use.
    close_old_connections()
    try:
        key = _authenticate(raw_key)
        events = _parse(body)
        return ingest(events, Source(mcp_id=key.mcp_id, team_id=key.team_id)), len(events)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("ingest: database unavailable: %s", exc)
        raise Answer(
            503, None, "the database is unavailable; retry later", Retry_After=str(RETRY_AFTER_SECONDS)
        ) from exc
    finally:
        try:
            close_old_connections()
        except DatabaseError:
            logger.debug("ingest: closing a broken connection failed", exc_info=True)


def _bearer(headers: dict[bytes, bytes]) -> str:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _read_body(receive: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Answer(413, "body", f"larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _handle(scope: dict[str, Any], receive: Any) -> tuple[int, dict[str, Any]]:
    if scope["method"] != "POST":
        raise Answer(405, "method", "use POST", Allow="POST")
    headers = dict(scope["headers"])
    raw_key = _bearer(headers)
    if not raw_key:
        raise Answer(401, "Authorization", "missing 'Bearer <ingest key>'", WWW_Authenticate="Bearer")
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(headers.get(b"content-length", b"0"))
    except ValueError as exc:
        raise Answer(400, "Content-Length", "not an integer") from exc
    if declared > limit:
        raise Answer(413, "body", f"larger than {limit} bytes")
    body = await _read_body(receive, limit)
    # An executor thread, not the one thread-sensitive thread: batches from many
    # servers are stored concurrently.
    result, received = await sync_to_async(receive_batch, thread_sensitive=False)(raw_key, body)
    # Committed: only now do subscribers hear of it (one message per channel).
    await result.outbox.send()
    answer = result.as_dict()
    return (400 if received and answer["rejected"] == received else 200), answer


async def _respond(send: Any, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    content = dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


async def ingest_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI application mounted at /api/ingest/events."""
    try:
        status, body = await _handle(scope, receive)
        headers: dict[str, str] = {}
    except Answer as answer:
        status, body, headers = answer.status, answer.body, answer.headers
    except ConnectionAbortedError:
        return
    except Exception:
        logger.exception("ingest: unexpected error")
        status, body, headers = 500, {"error": {"field": None, "reason": "internal error"}}, {}
    await _respond(send, status, body, headers)
