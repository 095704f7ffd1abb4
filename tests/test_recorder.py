"""How calls on the aggregated endpoint group into threads (no servers needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcps.endpoint.recorder import Call, CallRecorder


class Events:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def add(self, *events: dict[str, Any]) -> None:
        self.added.extend(events)


def _call() -> Call:
    return Call(
        "time", "get_current_time", {"timezone": "UTC"}, datetime.now(UTC), 1.5, result={"content": []}
    )


def test_an_idle_session_ends_its_thread_and_the_next_call_starts_another() -> None:
    events = Events()
    recorder = CallRecorder(events, idle_seconds=0.0)  # type: ignore[arg-type]
    first = recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    recorder.record(first, _call())
    second = recorder.session(("http", "a"), via="/mcp", principal="alice", client={})
    assert second.thread_id != first.thread_id
    ended = [e for e in events.added if e["type"] == "thread.ended"]
    assert [(e["thread_id"], e["status"]) for e in ended] == [(first.thread_id, "complete")]


def test_calls_in_one_session_share_a_thread_with_sequences_that_never_collide() -> None:
    events = Events()
    recorder = CallRecorder(events)  # type: ignore[arg-type]
    session = recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={"name": "host"})
    recorder.record(session, _call())
    recorder.record(recorder.session(("stdio", "1"), via="mcp_proxy", principal="bob", client={}), _call())
    steps = [(e["thread_id"], e["sequence"]) for e in events.added if e["type"] == "thread.step"]
    assert steps == [(session.thread_id, n) for n in range(4)]
    assert [e["type"] for e in events.added].count("thread.started") == 1
