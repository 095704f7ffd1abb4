"""How calls on the aggregated endpoint become threads and sessions, and are stored (no servers needed)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import pytest

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.endpoint.recorder import Call, CallRecorder
from missioncontrol.ingest.batcher import EventBatcher
from threads.models import ExecutionStep, Thread


class Events:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def add(self, *events: dict[str, Any], source: Any = None) -> None:
        self.added.extend(events)

    def add_later(self, build: Any, source: Any = None) -> None:
        self.added.extend(build())


def _call() -> Call:
    return Call(
        "time", "get_current_time", {"timezone": "UTC"}, datetime.now(UTC), 1.5, result={"content": []}
    )


def _failed(**outcome: Any) -> Call:
    return Call("time", "get_current_time", {"timezone": "Mars/Olympus"}, datetime.now(UTC), 2.0, **outcome)


def test_each_call_of_a_session_is_a_thread_of_its_own_on_the_server_that_answered() -> None:
    events = Events()
    recorder = CallRecorder(events)  # type: ignore[arg-type]
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={"name": "host"})
    first = recorder.record(session, _call())
    second = recorder.record(
        recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={}), _call()
    )
    assert first != second
    started = [e for e in events.added if e["type"] == "thread.started"]
    assert [(e["thread_id"], e["mcp_id"], e["session_id"]) for e in started] == [
        (first, "time", session.id),
        (second, "time", session.id),
    ]
    steps = [
        (e["thread_id"], e["sequence"], e["step_type"]) for e in events.added if e["type"] == "thread.step"
    ]
    assert steps == [
        (first, 0, "tool_call"),
        (first, 1, "tool_result"),
        (second, 0, "tool_call"),
        (second, 1, "tool_result"),
    ]
    ended = [(e["thread_id"], e["status"]) for e in events.added if e["type"] == "thread.ended"]
    assert ended == [(first, "complete"), (second, "complete")]  # no thread is left running


@pytest.mark.parametrize(
    "outcome",
    [
        {"result": {"content": [{"type": "text", "text": "Invalid timezone"}], "isError": True}},
        {"error": "timed out after 30 s"},
        {"error": "server 'time' is not connected"},
    ],
    ids=["error result", "timeout", "transport error"],
)
def test_a_failed_call_is_a_failed_step_and_a_thread_that_ended_in_error(outcome: dict[str, Any]) -> None:
    events = Events()
    recorder = CallRecorder(events)  # type: ignore[arg-type]
    session = recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    thread_id = recorder.record(session, _failed(**outcome))
    result = next(e for e in events.added if e.get("step_type") == "tool_result")
    assert (result["status"], result["description"]) == ("error", "time__get_current_time: error")
    ended = next(e for e in events.added if e["type"] == "thread.ended")
    assert (ended["thread_id"], ended["status"]) == (thread_id, "error")


def test_an_idle_session_is_ended_and_the_next_call_opens_another() -> None:
    events = Events()
    recorder = CallRecorder(events, idle_seconds=0.0)  # type: ignore[arg-type]
    first = recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    recorder.record(first, _call())
    second = recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    assert second.id != first.id
    ended = [e for e in events.added if e["type"] == "session.ended"]
    assert [e["session_id"] for e in ended] == [first.id]


def test_a_session_that_never_called_is_not_recorded_when_it_ends() -> None:
    events = Events()
    recorder = CallRecorder(events)  # type: ignore[arg-type]
    recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    recorder.end_all()
    assert events.added == []


@pytest.mark.django_db(transaction=True)
async def test_recorded_calls_are_stored_by_a_child_process_and_still_go_live(socket: Any) -> None:
    batcher = EventBatcher("test calls", linger=0, isolated=True)
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={"name": "host"})
    async with socket() as ws:
        await ws.subscribe("mcp:time")
        thread_id = recorder.record(session, _call())
        live = await ws.events("mcp:time", timeout=60)  # the child starts Django first
        assert [e["type"] for e in live] == ["thread.created", "thread.ended"]
    assert batcher.process is not None and batcher.process.pid not in (None, os.getpid())
    steps = ExecutionStep.objects.filter(thread_id=thread_id).order_by("sequence")
    assert [s.step_type async for s in steps] == ["tool_call", "tool_result"]
    assert await PermissionEvent.objects.filter(user_id="bob").acount() == 1
    await batcher.close()


@pytest.mark.django_db(transaction=True)
async def test_closing_an_isolated_batcher_stores_what_is_still_pending() -> None:
    batcher = EventBatcher("test calls", linger=60, isolated=True)  # would wait a minute
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={})
    thread_id = recorder.record(session, _call())
    recorder.end_all()
    await batcher.close()
    assert batcher.pending == 0
    thread = await Thread.objects.select_related("session").aget(id=thread_id)
    assert thread.status == "complete"
    assert thread.session is not None and thread.session.ended_at is not None
    assert await ExecutionStep.objects.filter(thread_id=thread_id).acount() == 2


@pytest.mark.django_db(transaction=True)
async def test_calls_made_while_a_batch_is_stored_wait_for_the_next_linger_and_go_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batcher = EventBatcher("test calls", linger=0.2)
    stores: list[int] = []
    storing, release = asyncio.Event(), asyncio.Event()
    store = batcher._store

    async def held(events: list[dict[str, Any]], source: Any, access: Any) -> Any:
        stores.append(len(events))
        storing.set()
        await release.wait()
        return await store(events, source, access)

    monkeypatch.setattr(batcher, "_store", held)
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={})
    recorder.record(session, _call())
    await storing.wait()
    for _ in range(3):  # calls keep coming while the first batch is stored
        recorder.record(session, _call())
    release.set()
    await asyncio.sleep(0.05)
    assert len(stores) == 1  # not one store per store: the next waits for its linger
    await asyncio.sleep(0.4)
    # The three calls' threads (started, two steps, a check, ended), in one batch.
    assert stores == [5, 3 * 5]
    await batcher.close()  # the second batch has been handed over: let it land
    assert await ExecutionStep.objects.filter(thread__session_id=session.id).acount() == 8


@pytest.mark.django_db(transaction=True)
async def test_a_calls_events_are_built_when_its_batch_is_formed_not_while_it_is_answered() -> None:
    batcher = EventBatcher("test calls", linger=60)  # nothing stored until flushed
    recorder = CallRecorder(batcher)
    told: list[int] = []
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={})
    threads = [recorder.record(session, _call(), then=lambda s, c: told.append(s.calls)) for _ in range(2)]

    assert told == []  # neither the steps nor the hook ran on the calls' path
    built = [e["type"] for _, e in batcher._pending if not callable(e)]
    assert built == [] and batcher.pending == 2  # one builder per call
    await batcher.flush()

    assert told == [2, 2]  # built later, after both calls took their places
    steps = ExecutionStep.objects.filter(thread_id__in=threads)
    assert sorted([(s.thread_id, s.sequence, s.step_type) async for s in steps]) == sorted(
        (t, n, kind) for t in threads for n, kind in enumerate(["tool_call", "tool_result"])
    )
    assert await PermissionEvent.objects.filter(thread_id__in=threads).acount() == 2
    await batcher.close()


@pytest.mark.django_db(transaction=True)
async def test_a_builder_that_fails_is_logged_and_the_events_queued_around_it_are_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def log(n: int) -> dict[str, Any]:
        return {
            "id": f"built-{n}",
            "type": "log",
            "mcp_id": "builders",
            "timestamp": datetime.now(UTC).isoformat(),
            "level": "INFO",
            "service": "test",
            "message": f"m{n}",
        }

    def broken() -> list[dict[str, Any]]:
        raise ValueError("a bug")

    batcher = EventBatcher("test builders", linger=60)
    batcher.add(log(1))
    batcher.add_later(broken)
    batcher.add_later(lambda: [log(2), log(3)])
    await batcher.flush()

    assert batcher.pending == 0
    stored = LogEntry.objects.filter(service="test").order_by("id")
    assert [e.id async for e in stored] == ["built-1", "built-2", "built-3"]
    assert "building queued events failed" in caplog.text
    await batcher.close()


@pytest.mark.django_db(transaction=True)
async def test_a_call_whose_arguments_or_result_hold_a_nul_is_stored_escaped_with_the_calls_beside_it() -> (
    None
):
    """PostgreSQL refuses NUL in text and jsonb: the whole batch of calls used to fail, and
    its retries too, until the batcher dropped it."""
    batcher = EventBatcher("test calls", linger=60)  # one batch, stored on flush
    recorder = CallRecorder(batcher)
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={})
    odd = Call(
        "files",
        "read_file",
        {"path": "dump\x00.bin"},
        datetime.now(UTC),
        2.0,
        result={"content": [{"type": "text", "text": "\x7fELF\x00\x00"}], "isError": False},
    )
    threads = [recorder.record(session, call) for call in (_call(), odd, _call())]
    await batcher.flush()
    stored = {
        s.thread_id: (s.step_type, s.description, s.details)
        async for s in ExecutionStep.objects.filter(thread_id__in=threads, step_type="tool_result")
    }
    assert [stored[t][1].split(":")[0] for t in threads] == [
        "time__get_current_time",
        "files__read_file",
        "time__get_current_time",
    ]
    (call_step,) = [
        s async for s in ExecutionStep.objects.filter(thread_id=threads[1], step_type="tool_call")
    ]
    assert call_step.details["arguments"] == {"path": "dump\\u0000.bin"}
    assert stored[threads[1]][2]["summary"] == "\x7fELF\\u0000\\u0000"
    assert await PermissionEvent.objects.filter(thread_id__in=threads).acount() == 3
    await batcher.close()
