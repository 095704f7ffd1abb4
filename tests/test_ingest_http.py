"""POST /api/ingest/events: keys, limits and the per-event answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings

from logs.models import LogEntry
from mcps.models import IngestKey
from tests.conftest import event

# The view stores batches from executor threads, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/ingest/events"


def post(client: Client, body: Any, key: str | None, raw: bool = False) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = body if raw else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def test_it_accepts_a_batch_and_answers_per_event(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": [event("log", message="a"), event("log", message="b")]}, ingest_key)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 0)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert LogEntry.objects.count() == 2


def test_it_reports_duplicates_and_rejections_in_a_mixed_batch(client: Client, ingest_key: str) -> None:
    good = event("log", message="kept")
    post(client, {"events": [good]}, ingest_key)
    bad = {
        "id": "b1",
        "type": "log",
        "timestamp": "2026-13-45T00:00:00Z",
        "level": "INFO",
        "service": "s",
        "message": "m",
    }
    body = post(client, {"events": [good, bad, event("log", message="new")]}, ingest_key).json()
    assert [r["status"] for r in body["results"]] == ["duplicate", "rejected", "accepted"]
    assert body["results"][1] == {
        "index": 1,
        "id": "b1",
        "status": "rejected",
        "field": "timestamp",
        "reason": "not an ISO 8601 date-time: '2026-13-45T00:00:00Z'",
    }
    assert LogEntry.objects.count() == 2


def test_it_answers_400_when_every_event_is_rejected(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": [{"id": "x", "type": "log"}]}, ingest_key)
    assert response.status_code == 400
    assert response.json()["results"][0]["status"] == "rejected"


def test_it_answers_401_without_a_key(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": [event("log")]}, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["field"] == "Authorization"


def test_it_answers_401_for_a_wrong_key(client: Client, ingest_key: str) -> None:
    assert post(client, {"events": [event("log")]}, "mc_not-a-real-key").status_code == 401


def test_it_answers_401_for_a_revoked_key(client: Client, ingest_key: str) -> None:
    IngestKey.objects.get(name="alpha-key").revoke()
    assert post(client, {"events": [event("log")]}, ingest_key).status_code == 401
    assert LogEntry.objects.count() == 0


@override_settings(INGEST_MAX_BODY_BYTES=2048)
def test_it_answers_413_for_an_oversized_body(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": [event("log", message="x" * 4096)]}, ingest_key)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert LogEntry.objects.count() == 0


@override_settings(INGEST_MAX_EVENTS=3)
def test_it_answers_413_for_too_many_events(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": [event("log") for _ in range(4)]}, ingest_key)
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "events"


def test_it_answers_400_for_a_body_that_is_not_json(client: Client, ingest_key: str) -> None:
    response = post(client, "{not json", ingest_key, raw=True)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_it_answers_400_when_events_is_not_an_array(client: Client, ingest_key: str) -> None:
    response = post(client, {"events": {"id": 1}}, ingest_key)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "events"


def test_it_refuses_other_methods(client: Client, ingest_key: str) -> None:
    assert client.get(URL).status_code == 405


def test_it_records_when_a_key_was_last_used(client: Client, ingest_key: str) -> None:
    post(client, {"events": [event("log")]}, ingest_key)
    assert IngestKey.objects.get(name="alpha-key").last_used_at is not None
