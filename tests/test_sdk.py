"""The Python SDK (sdk/, package missioncontrol_sdk) against the served application."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from missioncontrol_sdk import MissionControl, MissionControlHandler
from missioncontrol_sdk.mcp_server import Decision, instrument

from audit.models import PermissionEvent
from logs.models import LogEntry
from missioncontrol.ingest import edge
from tests import served as serving
from tests.processes import ROOT, free_port
from threads.models import ExecutionStep, LLMMessage, Thread

pytestmark = pytest.mark.django_db(transaction=True)
served = serving.served  # the fixture


@pytest.fixture
def mc(served: str, open_key: str) -> Iterator[MissionControl]:
    client = MissionControl(
        served, open_key, mcp_id="weather-agent", flush_interval=0.05, close_at_exit=False
    )
    yield client
    client.close(timeout=10)


def steps_of(thread_id: str) -> list[tuple[str, str, str]]:
    return list(
        ExecutionStep.objects.filter(thread_id=thread_id).values_list("step_type", "description", "status")
    )


def test_a_thread_with_its_steps_transcript_permission_and_child_is_stored(mc: MissionControl) -> None:
    with mc.thread(user_input="weather in Paris?") as t:
        t.message("user", "weather in Paris?")
        with t.step("tool_call", "get_weather", {"arguments": {"city": "Paris"}}) as step:
            step.details["result"] = "sunny"
        t.permission("weather/get_weather", "execute", granted=False, user_id="alice", reason="quota")
        with t.child(user_input="summarise") as child:
            child.message("assistant", "Sunny in Paris.")
        with pytest.raises(ValueError), t.step("script", "format"):
            raise ValueError("bad template")
    assert mc.flush(10)

    thread = Thread.objects.get(id=t.id)
    assert (thread.status, thread.user_input, thread.mcp_id) == (
        "complete",
        "weather in Paris?",
        "weather-agent",
    )
    assert steps_of(t.id) == [("tool_call", "get_weather", "complete"), ("script", "format", "error")]
    tool = ExecutionStep.objects.get(thread_id=t.id, sequence=1)
    assert (
        tool.details == {"arguments": {"city": "Paris"}, "result": "sunny"} and tool.duration_ms is not None
    )
    assert (
        ExecutionStep.objects.get(thread_id=t.id, sequence=2).details["error"] == "ValueError: bad template"
    )
    assert Thread.objects.get(id=child.id).parent_id == t.id
    assert list(LLMMessage.objects.values_list("role", "content").order_by("timestamp")) == [
        ("user", "weather in Paris?"),
        ("agent", "Sunny in Paris."),
    ]
    check = PermissionEvent.objects.get()
    assert (check.thread_id, check.granted, check.reason) == (t.id, False, "quota")
    assert mc.stats.rejected == 0 and mc.stats.dropped == 0


def test_a_tool_call_step_that_raises_is_a_failed_call_the_thread_counts_while_it_completes(
    mc: MissionControl,
) -> None:
    with mc.thread(user_input="time in two places") as t:
        with pytest.raises(TimeoutError), t.step("tool_call", "time.get_current_time") as failed:
            raise TimeoutError("no answer in 30 s")
        with t.step("tool_call", "time.get_current_time") as step:
            step.details["result"] = "12:00"
        running = t.step("tool_call", "time.convert_time")  # still waiting for its answer
        assert mc.flush(10)
        now = Thread.objects.get(id=t.id).summary()
        assert (now["error_count"], now["current_step"]["sequence"]) == (1, running.sequence)
        running.finish()
    mc.flush(10)
    thread = Thread.objects.get(id=t.id)
    # The agent carried on and completed: its status stays, the failure is counted beside it.
    assert (thread.status, thread.error_count) == ("complete", 1)
    call = ExecutionStep.objects.get(thread_id=t.id, sequence=failed.sequence)
    assert call.status == "error" and call.details["error"] == "TimeoutError: no answer in 30 s"


def test_a_thread_left_by_an_exception_ends_in_error(mc: MissionControl) -> None:
    with pytest.raises(RuntimeError), mc.thread(user_input="doomed") as t:
        raise RuntimeError("boom")
    mc.flush(10)
    assert Thread.objects.get(id=t.id).status == "error"


def test_events_go_in_batches(served: str, open_key: str) -> None:
    client = MissionControl(
        served, open_key, mcp_id="batcher", batch_size=50, flush_interval=30, close_at_exit=False
    )
    try:
        for i in range(120):
            client.log("INFO", f"line {i}", service="batcher")
        assert client.flush(10)
    finally:
        client.close()
    assert (client.stats.batches, client.stats.accepted) == (3, 120)
    assert LogEntry.objects.count() == 120


def test_events_are_sent_within_the_flush_interval_without_a_flush(served: str, open_key: str) -> None:
    client = MissionControl(served, open_key, mcp_id="lingerer", flush_interval=0.2, close_at_exit=False)
    try:
        client.log("INFO", "on its own", service="lingerer")
        deadline = time.monotonic() + 10
        while not LogEntry.objects.exists():
            assert time.monotonic() < deadline, "the event was never sent"
            time.sleep(0.05)
    finally:
        client.close()
    assert client.stats.batches == 1


def test_a_retry_after_a_503_stores_each_event_once(
    served: str, open_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = edge.receive_batch
    calls = {"n": 0}

    def stored_then_503(raw_key: str, body: bytes) -> Any:
        calls["n"] += 1
        answer = real(raw_key, body)
        if calls["n"] == 1:  # the batch is stored, but its answer is lost to a 503
            raise edge.Answer(503, None, "the database is unavailable; retry later", Retry_After="0")
        return answer

    monkeypatch.setattr(edge, "receive_batch", stored_then_503)
    client = MissionControl(served, open_key, mcp_id="retrier", backoff=0.01, close_at_exit=False)
    try:
        with client.thread(user_input="retry me") as t:
            t.step("tool_call", "x", status="complete")
        for i in range(5):
            client.log("INFO", f"line {i}", service="retrier")
        assert client.flush(10)
    finally:
        client.close()
    assert calls["n"] >= 2 and client.stats.retries == 1
    assert client.stats.duplicates == 8 and client.stats.accepted == 0  # the retry found them stored
    assert LogEntry.objects.count() == 5 and ExecutionStep.objects.count() == 1
    assert Thread.objects.get(id=t.id).status == "complete"


def test_a_full_buffer_drops_the_oldest_and_counts_them() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    client = MissionControl(
        nowhere, "k", max_buffer=5, batch_size=100, flush_interval=60, max_retries=0, close_at_exit=False
    )
    ids = [client.log("INFO", str(i), service="s") for i in range(8)]
    assert client.stats.dropped == 3 and client.pending == 5
    assert [e["id"] for e in client._buffer] == ids[3:]
    client.close(timeout=5)
    assert client.stats.dropped == 8  # the rest could not be delivered either


def test_a_blocking_buffer_waits_for_room(served: str, open_key: str) -> None:
    client = MissionControl(
        served, open_key, mcp_id="blocker", max_buffer=2, batch_size=2, flush_interval=0, overflow="block"
    )
    for i in range(10):
        client.log("INFO", str(i), service="s")
    client.close(timeout=10)
    assert client.stats.dropped == 0 and LogEntry.objects.count() == 10


def test_buffered_events_are_sent_when_the_process_exits(served: str, open_key: str) -> None:
    script = textwrap.dedent(
        f"""
        from missioncontrol_sdk import MissionControl
        mc = MissionControl({served!r}, {open_key!r}, mcp_id="exiter", flush_interval=60)
        with mc.thread(user_input="bye") as t:
            t.step("script", "last words", status="complete")
        print(t.id)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    thread = Thread.objects.get(id=out.stdout.strip())
    assert thread.status == "complete" and steps_of(thread.id) == [("script", "last words", "complete")]


def test_the_logging_handler_sends_records_on_the_current_thread(mc: MissionControl) -> None:
    log = logging.getLogger("weather.tools")
    handler = MissionControlHandler(mc, service="weather")
    log.addHandler(handler)
    try:
        log.warning("outside any thread")
        with mc.thread(user_input="x") as t:
            try:
                raise KeyError("city")
            except KeyError:
                log.exception("lookup failed", extra={"city": "Paris"})
        mc.flush(10)
    finally:
        log.removeHandler(handler)
    outside, inside = LogEntry.objects.order_by("timestamp")
    assert (outside.level, outside.thread_id, outside.service) == ("WARN", None, "weather")
    assert (inside.level, inside.thread_id, inside.message) == ("ERROR", t.id, "lookup failed")
    assert "KeyError: 'city'" in inside.exception and inside.context["city"] == "Paris"
    assert inside.context["logger"] == "weather.tools"


def test_an_instrumented_mcp_server_reports_each_tool_call_and_its_permission_decision(
    mc: MissionControl,
) -> None:
    server = MCPServer("weather")

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather."""
        return f"sunny in {city}"

    @server.tool()
    def delete_city(city: str) -> str:
        """Never allowed."""
        return "deleted"

    def policy(tool: str, arguments: Any) -> Decision:
        if tool == "delete_city":
            return Decision(
                False, "destructive tools are disabled", user_id="agent-7", rules_checked=("no-delete",)
            )
        return Decision(True, "read-only tool")

    instrument(server, mc, permission=policy)

    async def agent() -> None:
        async with Client(server) as client:
            assert (await client.call_tool("forecast", {"city": "Oslo"})).structured_content == {
                "result": "sunny in Oslo"
            }
            denied = await client.call_tool("delete_city", {"city": "Oslo"})
            assert denied.is_error and "destructive tools are disabled" in denied.content[0].text

    anyio.run(agent)
    mc.flush(10)
    ok = Thread.objects.get(user_input='forecast({"city": "Oslo"})')
    assert ok.status == "complete" and ok.execution_context["tool"] == "forecast"
    assert steps_of(ok.id) == [
        ("check_permission", "weather/forecast: granted", "complete"),
        ("tool_call", "forecast", "complete"),
        ("tool_result", "forecast: ok", "complete"),
    ]
    assert ExecutionStep.objects.get(thread=ok, step_type="tool_call").details["arguments"] == {
        "city": "Oslo"
    }
    denied = Thread.objects.get(user_input='delete_city({"city": "Oslo"})')
    assert denied.status == "error"
    assert steps_of(denied.id) == [("check_permission", "weather/delete_city: denied", "error")]
    check = PermissionEvent.objects.get(thread=denied)
    assert (check.granted, check.user_id, check.rules_checked) == (False, "agent-7", ["no-delete"])


def test_the_example_instrumented_server_reports_its_tool_calls_when_spawned_over_stdio(
    served: str, open_key: str
) -> None:
    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=[str(ROOT / "examples" / "instrumented_mcp_server.py")],
        env={"MC_URL": served, "MC_INGEST_KEY": open_key, "PATH": "/usr/bin:/bin"},
        cwd=str(ROOT),
    )

    async def host() -> None:
        async with Client(params) as client:
            assert not (await client.call_tool("add_note", {"title": "a", "text": "hello"})).is_error
            assert (await client.call_tool("delete_note", {"title": "a"})).is_error  # the server's own rule

    anyio.run(host)  # the server exits with its stdin and flushes at exit
    deadline = time.monotonic() + 20
    while Thread.objects.filter(mcp_id="notes").count() < 2 or not LogEntry.objects.exists():
        assert time.monotonic() < deadline, list(Thread.objects.values_list("id", "mcp_id"))
        time.sleep(0.1)
    saved = Thread.objects.get(user_input='add_note({"title": "a", "text": "hello"})')
    assert [s[0] for s in steps_of(saved.id)] == ["check_permission", "tool_call", "tool_result"]
    assert LogEntry.objects.get().thread_id == saved.id
    denied = PermissionEvent.objects.get(granted=False)
    assert denied.resource == "notes/delete_note" and "NOTES_ALLOW_DELETE" in denied.reason
