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
object with an `events` array; 429 with Retry-After past the key's rate limit
(rate_limits.ingest); 503 with Retry-After when the database is unreachable and the
batch cannot be spooled.

When the database is unreachable, a batch from a key this process authenticated within
`INGEST_KEY_MEMORY_SECONDS` is validated, its accepted events written durably to the
spool (ingest.spool) and the answer is 202 with `"spooled": true`; a drainer stores
them once the database is back. A full spool, or a key not seen recently, answers 503.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from mcps.models import IngestKey
from missioncontrol import metrics
from missioncontrol.ingest import storable
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.http import Answer, ingest_key, read_body, respond
from missioncontrol.ingest.pipeline import IngestResult, ingest, triage
from missioncontrol.ingest.spool import DATABASE_DOWN, SpoolFull, default_spool
from missioncontrol.jsontext import JSONDecodeError, dumps
from missioncontrol.models import hash_secret
from missioncontrol.ratelimit import acheck_ingest

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


class KeyMemory:
    """Ingest keys this process authenticated recently: who may still spool while the database is down.

    Only hashes, the bound server and the key's team are kept. A key revoked during an outage is
    honoured until the database answers again or the memory expires.
    """

    def __init__(self) -> None:
        self._keys: dict[str, tuple[Source, float]] = {}
        self._lock = threading.Lock()

    def remember(self, raw_key: str, source: Source) -> None:
        with self._lock:
            self._keys[hash_secret(raw_key)] = (source, time.monotonic())

    def recall(self, raw_key: str) -> Source | None:
        """The source (bound server, team) of a key seen within INGEST_KEY_MEMORY_SECONDS."""
        with self._lock:
            hit = self._keys.get(hash_secret(raw_key))
        if hit is None or time.monotonic() - hit[1] > settings.INGEST_KEY_MEMORY_SECONDS:
            return None
        return hit[0]


known_keys = KeyMemory()


def _database_down(exc: Exception, reason: str) -> Answer:
    logger.warning("ingest: database unavailable: %s", exc)
    return Answer(503, None, reason, Retry_After=str(RETRY_AFTER_SECONDS))


def _authenticate(raw_key: str) -> tuple[Source, Exception | None]:
    """(the key's source: bound server and team, the database error if it is down); 401 otherwise."""
    try:
        key = IngestKey.objects.authenticate(raw_key)
        if key is not None:
            key.touch()
    except DATABASE_DOWN as exc:
        known = known_keys.recall(raw_key)
        if known is None:
            raise _database_down(exc, "the database is unavailable; retry later") from exc
        return known, exc
    if key is None:
        raise Answer(401, "Authorization", "unknown or revoked ingest key", WWW_Authenticate="Bearer")
    source = Source(mcp_id=key.mcp_id, team_id=key.team_id)
    known_keys.remember(raw_key, source)
    return source, None


def _parse(body: bytes) -> list[Any]:
    try:
        data = storable.loads(body)  # a lone surrogate is one event's fault: not the body's
    except JSONDecodeError as exc:
        raise Answer(400, "body", f"not valid JSON: {exc}") from exc
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise Answer(400, "events", "required, an array of events")
    if len(events) > settings.INGEST_MAX_EVENTS:
        raise Answer(413, "events", f"more than {settings.INGEST_MAX_EVENTS} events in one batch")
    return events


@dataclass
class Received:
    result: IngestResult
    received: int
    spooled: bool = False


def _spool(events: list[Any], source: Source, cause: Exception) -> Received:
    """Keep the batch's accepted events on disk (fsync'd) while the database is down."""
    verdicts, valid = triage(events, source)
    result = IngestResult(verdicts)
    if valid:
        try:
            storable_events, _ = storable.escape_batch(events)
            default_spool().append(
                [storable_events[index] for index, _ in valid], source.mcp_id, source.team_id
            )
        except SpoolFull as exc:
            metrics.INGEST_EVENTS.labels("refused").inc(len(valid))
            raise _database_down(
                cause, "the database is unavailable and the ingest spool is full; retry later"
            ) from exc
        logger.warning("ingest: database unavailable (%s); %d event(s) spooled", cause, len(valid))
    return Received(result, len(events), spooled=bool(valid))


def receive_batch(raw_key: str, body: bytes) -> Received:
    """Authenticate, parse and store (or spool) one batch."""
    # Executor threads keep their connections: drop broken or expired ones around use.
    _close_connections()
    try:
        source, down = _authenticate(raw_key)
        events = _parse(body)
        if down is not None:  # no second wait for a database that just failed to answer
            return _spool(events, source, down)
        try:
            return Received(ingest(events, source), len(events))
        except DATABASE_DOWN as exc:
            return _spool(events, source, exc)
    finally:
        _close_connections()


def _close_connections() -> None:
    try:
        close_old_connections()
    except DatabaseError:
        logger.debug("ingest: closing a broken connection failed", exc_info=True)


async def _handle(scope: dict[str, Any], receive: Any) -> tuple[int, dict[str, Any]]:
    if scope["method"] != "POST":
        raise Answer(405, "method", "use POST", Allow="POST")
    headers = dict(scope["headers"])
    raw_key = ingest_key(headers)
    if not raw_key:
        raise Answer(401, "Authorization", "missing 'Bearer <ingest key>'", WWW_Authenticate="Bearer")
    # Before the key is looked up or the body read: a flood costs neither.
    denied = await acheck_ingest(raw_key)
    if denied is not None:
        raise Answer(
            429,
            None,
            denied.reason,
            {"limit": denied.limit, "retry_after": denied.retry_after},
            Retry_After=str(denied.retry_after),
        )
    body = await read_body(headers, receive, settings.INGEST_MAX_BODY_BYTES)
    # An executor thread, not the one thread-sensitive thread: batches from many
    # servers are stored concurrently.
    batch = await sync_to_async(receive_batch, thread_sensitive=False)(raw_key, body)
    # Committed: only now do subscribers hear of it (one message per channel).
    await batch.result.outbox.send()
    answer = batch.result.as_dict()
    metrics.INGEST_EVENTS.labels("rejected").inc(answer["rejected"])
    if batch.spooled:
        metrics.INGEST_EVENTS.labels("spooled").inc(answer["accepted"])
        return 202, {"spooled": True, **answer}
    metrics.INGEST_EVENTS.labels("accepted").inc(answer["accepted"])
    metrics.INGEST_EVENTS.labels("duplicate").inc(answer["duplicates"])
    return (400 if batch.received and answer["rejected"] == batch.received else 200), answer


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
    await respond(send, status, dumps(body).encode(), "application/json", headers)
