"""A server's usage: per tool calls, failures, p50/p95 latency and last error over a
window, and calls and errors over time, from the steps of its threads (model and REST)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mcps.models import MCPServer
from tests.conftest import make_user, signed_in, team
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db


def call(
    thread: Thread,
    sequence: int,
    tool: str,
    duration: float,
    *,
    minutes_ago: float = 1,
    failed: bool = False,
    mcp_id: str | None = "time",
    error: str = "",
) -> None:
    """A routed call's pair of steps: the call (no duration) and its result."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    details: dict[str, Any] = {"tool": tool} if mcp_id is None else {"mcp_id": mcp_id, "tool": tool}
    ExecutionStep.objects.create(
        thread=thread,
        sequence=sequence,
        timestamp=at,
        step_type="tool_call",
        description=tool,
        details=details,
    )
    ExecutionStep.objects.create(
        thread=thread,
        sequence=sequence + 1,
        timestamp=at,
        step_type="tool_result",
        description=f"{tool}: {'error' if failed else 'ok'}",
        details={**details, **({"error": error} if error else {})},
        status="error" if failed else "complete",
        duration_ms=duration,
    )


@pytest.fixture
def time_server() -> MCPServer:
    return MCPServer.objects.create(id="time", name="time", transport="stdio", command="mcp-server-time")


def usage(server: MCPServer, window: str = "24h") -> dict[str, Any]:
    return server.usage(ExecutionStep.objects.all(), window)


def test_each_tool_has_its_calls_failures_percentiles_and_last_error(time_server: MCPServer) -> None:
    thread = Thread.objects.create(id="T-1", mcp_id="time")
    for i, ms in enumerate([10.0, 20.0, 30.0, 40.0]):
        call(thread, i * 2, "get_current_time", ms, minutes_ago=10 - i)
    call(thread, 8, "convert_time", 100.0, failed=True, error="unknown zone 'Mars/Olympus'", minutes_ago=5)
    call(thread, 10, "convert_time", 300.0, failed=True, error="unknown zone 'Moon/Tycho'", minutes_ago=2)
    call(thread, 12, "convert_time", 200.0, minutes_ago=1)

    tools = {row["tool"]: row for row in usage(time_server)["tools"]}

    clock = tools["get_current_time"]
    assert (clock["calls"], clock["failures"]) == (4, 0)
    assert clock["p50_ms"] == pytest.approx(25.0)  # linear between the middle two, as percentile_cont
    assert clock["p95_ms"] == pytest.approx(38.5)
    assert clock["last_error"] is None
    convert = tools["convert_time"]
    assert (convert["calls"], convert["failures"]) == (3, 2)
    assert convert["p50_ms"] == pytest.approx(200.0)
    assert convert["p95_ms"] == pytest.approx(290.0)
    assert convert["last_error"]["message"] == "unknown zone 'Moon/Tycho'"
    assert convert["last_error"]["thread_id"] == "T-1"
    # Busiest first.
    assert [row["tool"] for row in usage(time_server)["tools"]] == ["get_current_time", "convert_time"]


def test_only_calls_inside_the_window_and_to_this_server_count(time_server: MCPServer) -> None:
    thread = Thread.objects.create(id="T-1", mcp_id="time")
    call(thread, 0, "get_current_time", 10.0, minutes_ago=30)
    call(thread, 2, "get_current_time", 10.0, minutes_ago=3 * 60)  # in 24h, not in 1h
    other = Thread.objects.create(id="T-2", mcp_id="mission-control")
    call(other, 0, "search", 5.0, mcp_id="kiwi")  # another server, on a thread of the aggregate
    call(other, 2, "get_current_time", 7.0)  # routed to time from Mission Control's own endpoint
    pushed = Thread.objects.create(id="T-3", mcp_id="time")
    call(pushed, 0, "get_current_time", 9.0, mcp_id=None)  # no mcp_id in details: the thread's server

    assert usage(time_server, "1h")["tools"][0]["calls"] == 3
    assert usage(time_server, "24h")["tools"][0]["calls"] == 4
    assert [row["tool"] for row in usage(time_server)["tools"]] == ["get_current_time"]


def test_calls_and_errors_over_time_fill_every_bucket(time_server: MCPServer) -> None:
    thread = Thread.objects.create(id="T-1", mcp_id="time")
    call(thread, 0, "get_current_time", 10.0, minutes_ago=5)
    call(thread, 2, "get_current_time", 10.0, minutes_ago=5, failed=True)
    call(thread, 4, "get_current_time", 10.0, minutes_ago=20)

    series = usage(time_server, "1h")["series"]
    assert len(series["t"]) in (60, 61)  # one a minute, the current minute included
    assert all(b - a == 60 for a, b in zip(series["t"], series["t"][1:], strict=False))
    assert sum(series["calls"]) == 3 and sum(series["errors"]) == 1
    assert series["calls"][-6] + series["calls"][-5] == 2  # the two calls five minutes ago
    week = usage(time_server, "7d")["series"]
    assert len(week["t"]) in (168, 169) and sum(week["calls"]) == 3


def test_the_rest_endpoint_answers_the_same_and_counts_only_visible_threads(time_server: MCPServer) -> None:
    ours = Thread.objects.create(id="T-ours", mcp_id="time", team=team("alpha"))
    theirs = Thread.objects.create(id="T-theirs", mcp_id="time", team=team("beta"))
    call(ours, 0, "get_current_time", 10.0)
    call(theirs, 0, "get_current_time", 10.0, failed=True, error="beta's secret")
    browser = signed_in(make_user("victor", "viewer", "alpha"))

    answer = browser.get("/api/mcps/time/stats?window=1h")

    assert answer.status_code == 200
    body = answer.json()
    assert body["window"] == "1h" and body["bucket"] == "minute"
    assert [(r["tool"], r["calls"], r["failures"], r["last_error"]) for r in body["tools"]] == [
        ("get_current_time", 1, 0, None)
    ]
    assert sum(body["series"]["errors"]) == 0
    bad = browser.get("/api/mcps/time/stats?window=1y")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "window"
    assert browser.get("/api/mcps/nope/stats").status_code == 404
