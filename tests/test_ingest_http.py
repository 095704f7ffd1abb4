"""POST /api/ingest/events: keys, limits and the per-event answer."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.test import override_settings

from logs.models import LogEntry
from mcps.models import IngestKey
from tests.conftest import event, post_batch

# The endpoint stores batches from executor threads, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)
count_logs = sync_to_async(LogEntry.objects.count)


async def test_it_accepts_a_batch_and_answers_per_event(ingest_key: str) -> None:
    response = await post_batch(
        {"events": [event("log", message="a"), event("log", message="b")]}, ingest_key
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 0)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert await count_logs() == 2


async def test_it_reports_duplicates_and_rejections_in_a_mixed_batch(ingest_key: str) -> None:
    good = event("log", message="kept")
    await post_batch({"events": [good]}, ingest_key)
    bad = {
        "id": "b1",
        "type": "log",
        "timestamp": "2026-13-45T00:00:00Z",
        "level": "INFO",
        "service": "s",
        "message": "m",
    }
    body = (await post_batch({"events": [good, bad, event("log", message="new")]}, ingest_key)).json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "rejected", "accepted"]
    assert body["results"][1] == {
        "index": 1,
        "id": "b1",
        "status": "rejected",
        "field": "timestamp",
        "reason": "not an ISO 8601 date-time: '2026-13-45T00:00:00Z'",
    }
    assert await count_logs() == 2


async def test_it_answers_400_when_every_event_is_rejected(ingest_key: str) -> None:
    response = await post_batch({"events": [{"id": "x", "type": "log"}]}, ingest_key)
    assert response.status_code == 400
    assert response.json()["results"][0]["status"] == "rejected"


async def test_it_answers_401_without_a_key(ingest_key: str) -> None:
    response = await post_batch({"events": [event("log")]}, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["field"] == "Authorization"


async def test_it_answers_401_for_a_wrong_key(ingest_key: str) -> None:
    assert (await post_batch({"events": [event("log")]}, "mc_not-a-real-key")).status_code == 401


async def test_it_answers_401_for_a_revoked_key(ingest_key: str) -> None:
    await sync_to_async(lambda: IngestKey.objects.get(name="alpha-key").revoke())()
    assert (await post_batch({"events": [event("log")]}, ingest_key)).status_code == 401
    assert await count_logs() == 0


@override_settings(INGEST_MAX_BODY_BYTES=2048)
async def test_it_answers_413_for_an_oversized_body(ingest_key: str) -> None:
    response = await post_batch({"events": [event("log", message="x" * 4096)]}, ingest_key)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert await count_logs() == 0


@override_settings(INGEST_MAX_EVENTS=3)
async def test_it_answers_413_for_too_many_events(ingest_key: str) -> None:
    response = await post_batch({"events": [event("log") for _ in range(4)]}, ingest_key)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "events"


async def test_it_answers_400_for_a_body_that_is_not_json(ingest_key: str) -> None:
    response = await post_batch("{not json", ingest_key, raw=True)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


async def test_it_answers_400_when_events_is_not_an_array(ingest_key: str) -> None:
    response = await post_batch({"events": {"id": 1}}, ingest_key)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "events"


async def test_it_refuses_other_methods(ingest_key: str) -> None:
    response = await post_batch({}, ingest_key, method="GET")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_it_records_when_a_key_was_last_used(ingest_key: str) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    key = await IngestKey.objects.aget(name="alpha-key")
    assert key.last_used_at is not None


async def test_it_answers_503_with_retry_after_when_the_database_is_down(
    ingest_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(IngestKey.objects, "authenticate", unreachable)
    response = await post_batch({"events": [event("log")]}, ingest_key)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["reason"] == "the database is unavailable; retry later"


async def test_it_answers_500_as_json_for_an_unexpected_failure(
    ingest_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("missioncontrol.ingest.edge.ingest", broken)
    response = await post_batch({"events": [event("log")]}, ingest_key)
    assert response.status_code == 500
    assert response.json() == {"error": {"field": None, "reason": "internal error"}}


async def test_only_the_exact_path_is_the_ingest_endpoint(ingest_key: str) -> None:
    from missioncontrol.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/api/ingest/events/", content=b"{}")
    assert response.status_code == 404
