"""The access audit off the hot path: the calls through /mcp and mcp_proxy are audited
by their EventBatcher, with the calls' own events, not with an insert each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest

from audit import access
from audit.models import AccessEvent
from mcps.endpoint.http import audit_called, audit_denied
from mcps.endpoint.recorder import Call, CallRecorder
from missioncontrol.ingest import batcher as batching
from missioncontrol.ingest.batcher import EventBatcher, StoreProcess
from threads.models import ExecutionStep

pytestmark = pytest.mark.django_db(transaction=True)


def _row(target: str, **kwargs: Any) -> dict[str, Any]:
    return access.row("olga", access.TOOL_CALL, target, **kwargs)


def _call_through_proxy(batcher: EventBatcher, principal: str) -> str:
    """One call recorded and audited as mcp_proxy does; its thread's id."""
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal=principal, client={})
    call = Call("time", "get_current_time", {}, datetime.now(UTC), 1.0, result={"content": []})
    return recorder.record(session, call, then=partial(audit_called, batcher))


async def _targets() -> list[str]:
    return [e.target async for e in AccessEvent.objects.filter(actor_name="olga").order_by("id")]


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each insert of access rows, in order (in this process)."""
    sizes: list[int] = []
    store = batching.store_rows

    def counted(rows: list[dict[str, Any]]) -> None:
        sizes.append(len(rows))
        store(rows)

    monkeypatch.setattr(batching, "store_rows", counted)
    return sizes


async def test_rows_made_together_are_stored_with_one_insert_and_their_own_times(inserts: list[int]) -> None:
    batcher = EventBatcher("test audit", linger=0.05)
    before = datetime.now(UTC)
    for n in range(25):
        batcher.add_access(_row(f"time/get_current_time#{n}"))
    made = datetime.now(UTC)
    await asyncio.sleep(0.2)  # linger, then one store

    assert inserts == [25]
    assert await _targets() == [f"time/get_current_time#{n}" for n in range(25)]
    stored = [e async for e in AccessEvent.objects.filter(actor_name="olga")]
    # Stamped when made, not when the batch was written.
    assert all(before <= e.timestamp <= made for e in stored)
    await batcher.close()


async def test_a_call_and_its_audit_reach_the_store_process_in_one_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batcher = EventBatcher("test calls", linger=60, isolated=True)
    batches: list[tuple[int, int]] = []
    store = StoreProcess.store

    async def counted(self: StoreProcess, events: list[Any], source: Any, rows: Any = None) -> Any:
        batches.append((len(events), len(rows or [])))
        return await store(self, events, source, rows)

    monkeypatch.setattr(StoreProcess, "store", counted)
    thread_id = _call_through_proxy(batcher, "olga (token ci)")
    await batcher.close()

    assert len(batches) == 1 and batches[0][1] == 1
    assert await ExecutionStep.objects.filter(thread_id=thread_id).acount() == 2
    event = await AccessEvent.objects.aget(actor_name="olga")
    assert (event.target, event.outcome, event.details["via"]) == (
        "time/get_current_time",
        "success",
        "mcp_proxy",
    )


async def test_a_row_added_while_the_previous_batch_is_being_stored_is_stored_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batcher = EventBatcher("test audit", linger=0)
    storing, release = asyncio.Event(), asyncio.Event()
    store = batcher._store

    async def slow(*args: Any) -> Any:
        storing.set()
        await release.wait()  # the insert takes a while: calls keep coming meanwhile
        return await store(*args)

    monkeypatch.setattr(batcher, "_store", slow)
    batcher.add_access(_row("first batch"))
    await storing.wait()
    batcher.add_access(_row("during its write"))
    release.set()
    await batcher.close()

    assert await _targets() == ["first batch", "during its write"]


async def test_a_failed_store_keeps_the_rows_for_the_retry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    batcher = EventBatcher("test audit", linger=0, retry_seconds=0.01)
    store = batcher._store
    failures = [RuntimeError("database is down")]

    async def flaky(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await store(*args)

    monkeypatch.setattr(batcher, "_store", flaky)
    batcher.add_access(_row("kept"))
    await asyncio.sleep(0.2)

    assert "storing 0 event(s), 1 access record(s) failed; will retry" in caplog.text
    assert await _targets() == ["kept"]
    await batcher.close()


async def test_rows_still_gathering_are_stored_when_the_batcher_closes() -> None:
    batcher = EventBatcher("test audit", linger=60, isolated=True)  # would wait a minute
    batcher.add_access(_row("at shutdown"))
    await batcher.close()

    assert batcher.pending == 0
    assert await _targets() == ["at shutdown"]


async def test_a_denied_call_is_audited_as_denied() -> None:
    batcher = EventBatcher("test audit", linger=0)
    session = CallRecorder(batcher).session(("http", "1"), via="/mcp", principal="olga", client={})
    audit_denied(batcher, session, "time", "get_current_time")
    await batcher.close()

    event = await AccessEvent.objects.aget(actor_name="olga")
    assert (event.outcome, event.details["reason"]) == ("denied", "role may not call tools")


async def test_a_store_that_fails_midway_is_undone_whole_and_the_retry_stores_each_record_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batcher = EventBatcher("test calls", linger=0, retry_seconds=0.01)
    store = batching.store_rows
    failures = [RuntimeError("connection lost at commit")]

    def fails_after_writing(rows: list[dict[str, Any]]) -> None:
        store(rows)
        if failures:
            raise failures.pop()

    monkeypatch.setattr(batching, "store_rows", fails_after_writing)
    thread_id = _call_through_proxy(batcher, "olga")
    await asyncio.sleep(0.3)
    await batcher.close()

    assert not failures
    assert await _targets() == ["time/get_current_time"]
    assert await ExecutionStep.objects.filter(thread_id=thread_id).acount() == 2
