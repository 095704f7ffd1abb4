"""The access audit off the hot path: /mcp's calls are recorded in batches, not one insert each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from audit import access
from audit.models import AccessEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch record_soon writes, in order."""
    sizes: list[int] = []
    write = access._bulk_write

    async def counted(events: list[AccessEvent]) -> None:
        sizes.append(len(events))
        await write(events)

    monkeypatch.setattr(access, "_bulk_write", counted)
    return sizes


async def test_records_made_together_are_stored_with_one_insert_and_their_own_times(
    writes: list[int],
) -> None:
    before = datetime.now(UTC)
    for n in range(25):
        access.record_soon("olga", access.TOOL_CALL, f"time/get_current_time#{n}", actor_id=None)
    made = datetime.now(UTC)
    await access.settle()

    assert writes == [25]
    stored = [e async for e in AccessEvent.objects.filter(actor_name="olga").order_by("id")]
    assert [e.target for e in stored] == [f"time/get_current_time#{n}" for n in range(25)]
    # Stamped when recorded, not when the batch was written.
    assert all(before <= e.timestamp <= made for e in stored)


async def test_a_record_made_after_a_batch_was_written_goes_in_the_next_one(writes: list[int]) -> None:
    access.record_soon("olga", access.TOOL_CALL, "a")
    access.record_soon("olga", access.TOOL_CALL, "b")
    await access.settle()
    access.record_soon("olga", access.TOOL_CALL, "c")
    await access.settle()

    assert writes == [2, 1]
    assert await AccessEvent.objects.filter(actor_name="olga").acount() == 3


async def test_a_bad_record_is_logged_and_never_raised_into_the_caller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access.record_soon("olga", access.TOOL_CALL, "x", outcome="maybe")
    access.record_soon("olga", access.TOOL_CALL, "y")
    await access.settle()

    assert "could not record tool.call x" in caplog.text
    assert [e.target async for e in AccessEvent.objects.filter(actor_name="olga")] == ["y"]


async def test_a_failed_write_is_logged_and_the_next_batch_still_stored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write = access._bulk_write
    failures = [RuntimeError("database is down")]

    async def flaky(events: list[AccessEvent]) -> Any:
        if failures:
            raise failures.pop()
        return await write(events)

    monkeypatch.setattr(access, "_bulk_write", flaky)
    access.record_soon("olga", access.TOOL_CALL, "lost")
    await access.settle()
    access.record_soon("olga", access.TOOL_CALL, "kept")
    await access.settle()

    assert "could not record 1 event(s)" in caplog.text
    assert [e.target async for e in AccessEvent.objects.filter(actor_name="olga")] == ["kept"]


async def test_records_gathering_when_their_loop_stops_are_still_written() -> None:
    async def record_then_stop() -> None:
        access.record_soon("olga", access.TOOL_CALL, "at shutdown")
        task = next(iter(access._background))
        await asyncio.sleep(0)  # the writer is waiting for more
        task.cancel()  # what a closing loop does to its tasks
        await asyncio.gather(task, return_exceptions=True)

    await record_then_stop()
    assert [e.target async for e in AccessEvent.objects.filter(actor_name="olga")] == ["at shutdown"]


async def test_records_of_a_writer_that_never_ran_are_reported_lost_not_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    access.record_soon("olga", access.TOOL_CALL, "never written")
    task = next(iter(access._background))
    task.cancel()  # before its first step, as when its loop closes at once
    await asyncio.gather(task, return_exceptions=True)

    assert "1 record(s) not written, their event loop closed" in caplog.text
    assert access._pending == {} and access._background == set()


async def test_a_record_made_while_the_previous_batch_is_being_written_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write = access._bulk_write
    writing, release = asyncio.Event(), asyncio.Event()

    async def slow(events: list[AccessEvent]) -> None:
        writing.set()
        await release.wait()  # the insert takes a while: calls keep coming meanwhile
        await write(events)

    monkeypatch.setattr(access, "_bulk_write", slow)
    access.record_soon("olga", access.TOOL_CALL, "first batch")
    await writing.wait()
    access.record_soon("olga", access.TOOL_CALL, "during its write")
    monkeypatch.setattr(access, "_bulk_write", write)
    release.set()
    await access.settle()

    stored = [e.target async for e in AccessEvent.objects.filter(actor_name="olga").order_by("id")]
    assert stored == ["first batch", "during its write"]
