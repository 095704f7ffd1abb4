"""POST /api/ingest/events: thin HTTP edge over `pipeline.ingest`."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from mcps.models import IngestKey
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import IngestResult, ingest


def error(status: int, field: str, reason: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"field": field, "reason": reason}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _authenticate(raw_key: str) -> IngestKey | None:
    # Executor threads keep their connections: drop broken or expired ones around use.
    close_old_connections()
    try:
        key = IngestKey.objects.authenticate(raw_key)
        if key is not None:
            key.touch()
        return key
    finally:
        close_old_connections()


def _store(events: list[Any], key: IngestKey) -> IngestResult:
    close_old_connections()
    try:
        return ingest(events, Source(mcp_id=key.mcp_id))
    finally:
        close_old_connections()


@csrf_exempt
async def ingest_events(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return error(405, "method", "use POST", Allow="POST")
    raw_key = _bearer(request)
    if not raw_key:
        return error(401, "Authorization", "missing 'Bearer <ingest key>'", WWW_Authenticate="Bearer")
    # Executor threads, not the one thread-sensitive thread: batches from many servers
    # are stored concurrently.
    key = await sync_to_async(_authenticate, thread_sensitive=False)(raw_key)
    if key is None:
        return error(401, "Authorization", "unknown or revoked ingest key", WWW_Authenticate="Bearer")

    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return error(400, "Content-Length", "not an integer")
    if declared > limit:
        return error(413, "body", f"larger than {limit} bytes")
    try:
        body = request.body
    except RequestDataTooBig:
        return error(413, "body", f"larger than {limit} bytes")
    if len(body) > limit:
        return error(413, "body", f"larger than {limit} bytes")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, "body", f"not valid JSON: {exc}")
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        return error(400, "events", "required, an array of events")
    if len(events) > settings.INGEST_MAX_EVENTS:
        return error(413, "events", f"more than {settings.INGEST_MAX_EVENTS} events in one batch")

    result = await sync_to_async(_store, thread_sensitive=False)(events, key)
    # Committed: only now do subscribers hear of it (one group_send per channel).
    await result.outbox.send()
    body_out = result.as_dict()
    status = 400 if events and body_out["rejected"] == len(events) else 200
    return JsonResponse(body_out, status=status)
