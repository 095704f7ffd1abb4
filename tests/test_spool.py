"""Durable ingest: nothing accepted is lost while the database is unreachable."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from logs.models import LogEntry
from missioncontrol.ingest import drainer
from missioncontrol.ingest.spool import default_spool, drain_default
from tests.conftest import event, post_batch
from tests.faults import bring_back, take_down

pytestmark = pytest.mark.django_db(transaction=True)

count_logs = sync_to_async(LogEntry.objects.count)
take_down_async = sync_to_async(take_down)
bring_back_async = sync_to_async(bring_back)


async def _stored_ids() -> list[str]:
    return await sync_to_async(lambda: sorted(LogEntry.objects.values_list("id", flat=True)))()


@pytest.fixture(autouse=True)
def _fresh_connection_after_the_outage() -> Any:
    """This thread's connection (the test harness's) was cut by the outage: reopen it for teardown."""
    yield
    connections.close_all()


def _spool_files() -> list[Path]:
    return default_spool().files()


async def test_it_spools_a_batch_and_answers_202_while_the_database_is_down(ingest_key: str) -> None:
    assert (await post_batch({"events": [event("log", id="before")]}, ingest_key)).status_code == 200
    token = await take_down_async()
    try:
        response = await post_batch(
            {"events": [event("log", id="s1"), event("log", id="s2"), {"id": "bad", "type": "log"}]},
            ingest_key,
        )
    finally:
        await bring_back_async(token)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["spooled"] is True
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected"]
    assert len(_spool_files()) == 1
    assert await _stored_ids() == ["before"]

    report = await sync_to_async(drain_default)()
    assert (report.files, report.events, report.remaining) == (1, 2, 0)
    assert await _stored_ids() == ["before", "s1", "s2"]
    assert _spool_files() == []


async def test_spooled_events_keep_the_server_of_their_key(ingest_key: str) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        assert (await post_batch({"events": [event("log", id="bound")]}, ingest_key)).status_code == 202
    finally:
        await bring_back_async(token)
    await sync_to_async(drain_default)()
    assert (await LogEntry.objects.aget(id="bound")).mcp_id == "srv-alpha"


async def test_it_answers_503_for_a_key_not_seen_before_the_outage(ingest_key: str) -> None:
    token = await take_down_async()
    try:
        response = await post_batch({"events": [event("log")]}, ingest_key)
    finally:
        await bring_back_async(token)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert _spool_files() == []


async def test_a_full_spool_answers_503_with_retry_after(ingest_key: str, settings: Any) -> None:
    settings.SPOOL_MAX_BYTES = 600
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        first = await post_batch({"events": [event("log", id="fits")]}, ingest_key)
        full = await post_batch(
            {"events": [event("log", id=f"n{i}", message="x" * 50) for i in range(5)]}, ingest_key
        )
    finally:
        await bring_back_async(token)
    assert first.status_code == 202
    assert full.status_code == 503
    assert full.headers["Retry-After"] == "5"
    assert (
        full.json()["error"]["reason"]
        == "the database is unavailable and the ingest spool is full; retry later"
    )
    await sync_to_async(drain_default)()
    assert "fits" in await _stored_ids() and "n0" not in await _stored_ids()


async def test_draining_while_the_database_is_still_down_keeps_every_file(ingest_key: str) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        for i in range(3):
            assert (await post_batch({"events": [event("log", id=f"k{i}")]}, ingest_key)).status_code == 202
        report = await sync_to_async(drain_default)()
        assert report.files == 0 and report.remaining == 3 and report.error
    finally:
        await bring_back_async(token)
    assert (await sync_to_async(drain_default)()).events == 3
    assert {"k0", "k1", "k2"} <= set(await _stored_ids())


async def test_a_drain_that_dies_after_committing_replays_without_duplicates(
    ingest_key: str, tmp_path: Path
) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        await post_batch({"events": [event("log", id="once-a"), event("log", id="once-b")]}, ingest_key)
    finally:
        await bring_back_async(token)
    (spooled,) = _spool_files()
    kept = tmp_path / "kept"
    shutil.copy(spooled, kept)
    await sync_to_async(drain_default)()
    # The drainer was killed between its commit and its unlink: the file is still there.
    shutil.copy(kept, spooled)
    report = await sync_to_async(drain_default)()
    assert report.files == 1 and report.remaining == 0
    assert await _stored_ids() == sorted([*(await _stored_ids())])
    assert [i for i in await _stored_ids() if i.startswith("once-")] == ["once-a", "once-b"]
    assert await count_logs() == 3


async def test_a_batch_claimed_by_another_drainer_is_left_to_it(ingest_key: str) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        await post_batch({"events": [event("log", id="claimed")]}, ingest_key)
    finally:
        await bring_back_async(token)
    (spooled,) = _spool_files()
    fd = os.open(spooled, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        report = await sync_to_async(drain_default)()
        assert (report.files, report.remaining) == (0, 1)
    finally:
        os.close(fd)
    assert (await sync_to_async(drain_default)()).files == 1
    assert "claimed" in await _stored_ids()


async def test_every_event_is_stored_once_when_the_database_goes_away_during_ingest(ingest_key: str) -> None:
    await post_batch({"events": [event("log", id="warm-up")]}, ingest_key)
    batches, per_batch = 30, 20
    answers: list[int] = []

    async def sender() -> None:
        for b in range(batches):
            events = [event("log", id=f"load-{b}-{i}", message=f"{b}/{i}") for i in range(per_batch)]
            answers.append((await post_batch({"events": events}, ingest_key)).status_code)

    async def outage() -> None:
        while len(answers) < 5:
            await asyncio.sleep(0.01)
        token = await take_down_async()
        while len(answers) < 20:
            await asyncio.sleep(0.01)
        await bring_back_async(token)

    await asyncio.gather(sender(), outage())
    assert set(answers) <= {200, 202} and 202 in answers and 200 in answers, answers
    await sync_to_async(call_command)("drain_spool")
    ids = [i for i in await _stored_ids() if i.startswith("load-")]
    assert len(ids) == len(set(ids)) == batches * per_batch
    assert _spool_files() == []


async def test_drained_events_reach_live_subscribers(ingest_key: str, socket: Any) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        await post_batch({"events": [event("log", id="late", message="from the spool")]}, ingest_key)
    finally:
        await bring_back_async(token)
    async with socket() as ws:
        await ws.subscribe("logs:*", history=0)
        await drainer.drain_once()
        (live,) = await ws.events("logs:*")
    assert (live["id"], live["message"]) == ("late", "from the spool")


async def test_the_web_process_drains_on_its_own_once_the_database_is_back(
    ingest_key: str, settings: Any
) -> None:
    settings.SPOOL_DRAIN_IN_PROCESS, settings.SPOOL_DRAIN_INTERVAL = True, 0.1
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        await post_batch({"events": [event("log", id="auto")]}, ingest_key)
        await asyncio.sleep(0.3)  # the drainer runs and finds the database still down
        assert len(_spool_files()) == 1
    finally:
        await bring_back_async(token)
    try:
        for _ in range(50):
            if not _spool_files():
                break
            await asyncio.sleep(0.1)
        assert "auto" in await _stored_ids()
    finally:
        await drainer.stop()


def test_the_command_reports_what_it_replayed(ingest_key: str, capsys: Any) -> None:
    default_spool().append([event("log", id="cmd")], "srv-alpha")
    call_command("drain_spool")
    assert "replayed 1 batch(es), 1 event(s); 0 left" in capsys.readouterr().out
    assert LogEntry.objects.get(id="cmd").mcp_id == "srv-alpha"


def test_the_beat_task_drains_the_spool(ingest_key: str) -> None:
    from missioncontrol.tasks import drain_spool

    default_spool().append([event("log", id="beat")], None)
    assert drain_spool.apply().get() == {"files": 1, "events": 1, "remaining": 0, "error": None}
    assert settings.CELERY_BEAT_SCHEDULE["missioncontrol.drain-spool"]["task"] == "missioncontrol.drain_spool"


async def test_an_event_with_a_lone_surrogate_is_spooled_escaped_while_the_database_is_down(
    ingest_key: str,
) -> None:
    await post_batch({"events": [event("log")]}, ingest_key)
    token = await take_down_async()
    try:
        response = await post_batch(
            {"events": [event("log", id="odd", message="\ud800\x00"), event("log", id="plain")]}, ingest_key
        )
    finally:
        await bring_back_async(token)
    assert response.status_code == 202, response.content
    assert response.json()["results"][0]["escaped"][0]["field"] == "message"
    await sync_to_async(drain_default)()
    assert (await LogEntry.objects.aget(id="odd")).message == "\\ud800\\u0000"
    assert await LogEntry.objects.filter(id="plain").aexists()
