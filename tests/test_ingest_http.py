"""POST /api/ingest/events: keys, limits and the per-event answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection
from django.test import override_settings

from logs.models import LogEntry
from mcps.models import IngestKey
from tests.conftest import event, post_batch
from tests.processes import daphne, free_port, post_events, shared_database_env

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


async def test_one_event_holding_a_nul_or_a_lone_surrogate_sinks_nothing_of_its_batch(
    ingest_key: str,
) -> None:
    # The JSON spells them "\u0000" and "\ud800": PostgreSQL would refuse the whole batch.
    events = [
        event("log", message="first"),
        event("log", message="nul\x00here", context={"k\x00": 1}),
        event("log", message="half a pair \ud800"),
        event("log", message="last"),
    ]
    response = await post_batch({"events": events}, ingest_key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (4, 0)
    assert body["results"][1]["escaped"] == [
        {
            "field": "message",
            "reason": "holds NUL (U+0000), which PostgreSQL cannot store: stored as the text \\u0000",
        },
        {
            "field": "context.k\\u0000",
            "reason": "its key holds NUL (U+0000), which PostgreSQL cannot store: stored as the text \\u0000",
        },
    ]
    assert body["results"][2]["escaped"][0]["field"] == "message"
    stored = await sync_to_async(lambda: sorted(LogEntry.objects.values_list("message", flat=True)))()
    assert stored == ["first", "half a pair \\ud800", "last", "nul\\u0000here"]


async def test_a_body_that_is_bad_json_besides_a_lone_surrogate_is_still_refused(ingest_key: str) -> None:
    response = await post_batch('{"events": [{"message": "\\ud800"}], "n": NaN}', ingest_key, raw=True)
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL is the database that refuses them")
def test_a_served_postgresql_deployment_keeps_every_event_of_a_batch_with_a_nul(
    tmp_path: Path, ingest_key: str, admin_token: str
) -> None:
    """daphne on PostgreSQL and Redis: JSON ingest and OTLP/JSON each with one bad value."""
    web = daphne(free_port(), shared_database_env(), tmp_path / "web.log")
    try:
        assert web.wait_healthy()["database"]["vendor"] == "postgresql"
        events = [
            event("log", id="n-1", message="first"),
            event("log", id="n-2", message="a\x00b", context={"raw": "\ud800"}),
            event("log", id="n-3", message="third"),
        ]
        answer = post_events(web.url, ingest_key, events)
        assert (answer["accepted"], answer["rejected"]) == (3, 0)
        assert [e["field"] for e in answer["results"][1]["escaped"]] == ["message", "context.raw"]
        record = {"timeUnixNano": "1790000000000000000", "body": {"stringValue": "otlp\u0000line"}}
        otlp = httpx.post(
            f"{web.url}/v1/logs",
            json={"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]},
            headers={"Authorization": f"Bearer {ingest_key}"},
            timeout=10,
        )
        assert otlp.status_code == 200, otlp.text
        assert "holds NUL (U+0000)" in otlp.json()["partialSuccess"]["errorMessage"]
        logs = httpx.get(
            f"{web.url}/api/logs",
            params={"mcps": "srv-alpha"},
            headers={"Authorization": f"Bearer {admin_token}"},
        ).json()["results"]
        assert sorted(row["message"] for row in logs) == ["a\\u0000b", "first", "otlp\\u0000line", "third"]
    finally:
        web.stop()
