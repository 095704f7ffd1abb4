"""Mission Control as an MCP server about itself: the `missioncontrol__` tools on /mcp.

An `mcp` SDK client, in both protocol eras, against the endpoint's server with no
gateway running at all: the own tools are answered in-process, and recorded as a
thread's steps and permission checks exactly like routed calls.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import mcp_types as types
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from mcp.shared.exceptions import MCPError

from audit.models import PermissionEvent
from automations.models import KnowledgeEntry
from automations.system import load_system_directives
from mcps.endpoint.router import ChannelRouter
from mcps.gateway import rpc
from mcps.models import AGGREGATE_ID, HealthCheck, MCPServer
from tests.conftest import event, store, superuser_now
from tests.test_mcp_endpoint import Endpoint, _endpoint
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db(transaction=True)

OWN = {
    "missioncontrol__search_logs",
    "missioncontrol__get_thread",
    "missioncontrol__list_servers",
    "missioncontrol__list_anomalies",
    "missioncontrol__list_directives",
    "missioncontrol__run_directive",
}


@pytest.fixture
async def endpoint(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Endpoint]:
    monkeypatch.setattr(rpc, "ACK_SECONDS", 0.2)  # no gateway runs: say so quickly
    root = await sync_to_async(superuser_now)()  # own tools answer as their caller
    ep = _endpoint(ChannelRouter(), root.pk)
    yield ep
    await ep.batcher.flush()


async def call(endpoint: Endpoint, name: str, arguments: dict[str, Any], mode: str = "auto") -> Any:
    async with endpoint.client(mode) as client:
        return await client.call_tool(name, arguments)


def answer(result: Any) -> Any:
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_its_own_tools_are_listed_with_schemas_all_read_only_but_run_directive_even_without_a_gateway(
    endpoint: Endpoint, mode: str
) -> None:
    async with endpoint.client(mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == OWN
    for name, tool in tools.items():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (name != "missioncontrol__run_directive")
        assert tool.annotations.destructive_hint is False and tool.input_schema["type"] == "object"
    assert tools["missioncontrol__get_thread"].input_schema["required"] == ["thread_id"]
    assert tools["missioncontrol__search_logs"].input_schema["properties"]["levels"]["items"]["enum"] == [
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
    ]


async def test_search_logs_filters_like_the_logs_api(endpoint: Endpoint) -> None:
    await sync_to_async(store)(
        event("log", 1, id="l1", level="ERROR", service="db", message="disk full on /var", mcp_id="pg"),
        event("log", 2, id="l2", level="ERROR", service="db", message="disk warning: 80%", mcp_id="pg"),
        event("log", 3, id="l3", level="INFO", service="db", message="disk checked", mcp_id="pg"),
        event("log", 4, id="l4", level="ERROR", service="web", message="disk full", mcp_id="web"),
    )
    found = answer(
        await call(endpoint, "missioncontrol__search_logs", {"query": "disk -warning", "levels": ["ERROR"]})
    )
    assert [log["id"] for log in found["logs"]] == ["l4", "l1"] and found["more"] is False
    only_db = answer(
        await call(endpoint, "missioncontrol__search_logs", {"mcps": ["pg"], "services": ["db"], "limit": 2})
    )
    assert [log["id"] for log in only_db["logs"]] == ["l3", "l2"] and only_db["more"] is True

    bad_since = await call(endpoint, "missioncontrol__search_logs", {"since": "soon"})
    assert bad_since.is_error and bad_since.content[0].text == "since: Give a duration like 30m, 24h or 7d."
    bad_level = await call(endpoint, "missioncontrol__search_logs", {"levels": ["LOUD"]}, mode="legacy")
    assert bad_level.is_error and "(arguments.levels.0)" in bad_level.content[0].text
    unknown = await call(endpoint, "missioncontrol__search_logs", {"q": "x"})
    assert unknown.is_error and "Additional properties are not allowed ('q' was unexpected)" in (
        unknown.content[0].text
    )


async def test_get_thread_answers_the_thread_with_its_timeline(endpoint: Endpoint) -> None:
    await sync_to_async(store)(
        event("thread.started", 1, thread_id="T-7", user_input="fix the build", mcp_id="git"),
        event("thread.step", 3, thread_id="T-7", sequence=2, description="run tests"),
        event("thread.step", 2, thread_id="T-7", sequence=1, description="read the log"),
        event("thread.message", 4, thread_id="T-7", role="agent", content="done"),
    )
    state = answer(await call(endpoint, "missioncontrol__get_thread", {"thread_id": "T-7"}))
    assert state["thread"]["user_input"] == "fix the build" and state["thread"]["status"] == "running"
    assert [s["description"] for s in state["timeline"]] == ["read the log", "run tests"]
    assert [m["content"] for m in state["transcript"]] == ["done"]
    missing = await call(endpoint, "missioncontrol__get_thread", {"thread_id": "T-404"})
    assert missing.is_error and missing.content[0].text == "no thread 'T-404'"


async def test_list_servers_tells_each_servers_status_and_latest_probe(endpoint: Endpoint) -> None:
    def scene() -> None:
        MCPServer.objects.create(id="time", name="time", transport="stdio", command="x", status="connected")
        MCPServer.objects.create(id="pushy", name="pushy")
        now = timezone.now()
        HealthCheck.objects.create(
            server_id="time", ok=False, error="timed out", checked_at=now - timedelta(minutes=1)
        )
        HealthCheck.objects.create(server_id="time", ok=True, latency_ms=3.5, checked_at=now)

    await sync_to_async(scene)()
    servers = {
        s["id"]: s for s in answer(await call(endpoint, "missioncontrol__list_servers", {}))["servers"]
    }
    assert servers["time"]["status"] == "connected" and servers["time"]["managed"] is True
    assert servers["time"]["health"]["ok"] is True and servers["time"]["health"]["latency_ms"] == 3.5
    assert servers["pushy"]["health"] is None and servers["pushy"]["managed"] is False
    connected = answer(await call(endpoint, "missioncontrol__list_servers", {"status": ["connected"]}))
    assert [s["id"] for s in connected["servers"]] == ["time"]


async def test_list_anomalies_and_directives_read_what_the_directives_left(endpoint: Endpoint) -> None:
    def scene() -> None:
        load_system_directives()
        KnowledgeEntry.objects.record(
            "anomaly-denial-rate-spike",
            title="Permission denial rate spike",
            category="alert",
            content="40% denied",
            confidence=0.8,
            source_directive="detect_anomalies",
        )
        KnowledgeEntry.objects.record(
            "pattern-thread-durations", title="Durations", category="pattern", content="p50", confidence=0.5
        )

    await sync_to_async(scene)()
    anomalies = answer(await call(endpoint, "missioncontrol__list_anomalies", {}))["anomalies"]
    assert [(a["slug"], a["source_directive"]) for a in anomalies] == [
        ("anomaly-denial-rate-spike", "detect_anomalies")
    ]
    assert answer(await call(endpoint, "missioncontrol__list_anomalies", {"kind": "slow_thread"})) == {
        "anomalies": []
    }
    directives = answer(await call(endpoint, "missioncontrol__list_directives", {"system": True}))[
        "directives"
    ]
    heal = {d["name"]: d for d in directives}["heal_mcp_connection"]
    assert len(directives) == 8 and heal["system"] is True
    assert heal["inputs"]["mcp_id"]["type"] == "string"
    assert heal["scripts"] == ["check_mcp_status", "reconnect_mcp", "log_recovery", "log_failure"]
    assert answer(await call(endpoint, "missioncontrol__list_directives", {"system": False})) == {
        "directives": []
    }


async def test_own_tool_calls_are_recorded_like_routed_ones(endpoint: Endpoint) -> None:
    async with endpoint.client() as client:
        await client.call_tool("missioncontrol__list_servers", {})
        await client.call_tool("missioncontrol__get_thread", {"thread_id": "nope"})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("missioncontrol__drop_tables", {})
        assert unknown.value.code == types.INVALID_PARAMS
    await endpoint.batcher.flush()

    threads = {t.user_input.split(",")[0]: t async for t in Thread.objects.all()}
    assert {name: (t.mcp_id, t.status) for name, t in threads.items()} == {
        "missioncontrol__list_servers": (AGGREGATE_ID, "complete"),
        "missioncontrol__get_thread": (AGGREGATE_ID, "error"),
    }
    assert threads["missioncontrol__list_servers"].execution_context["principal"] == "alice"
    steps = [
        (s.step_type, s.description, s.status, s.details.get("tool"))
        async for s in ExecutionStep.objects.order_by("thread__started_at", "sequence")
    ]
    assert steps == [
        ("tool_call", "missioncontrol__list_servers", "complete", "list_servers"),
        ("tool_result", "missioncontrol__list_servers: ok", "complete", "list_servers"),
        ("tool_call", "missioncontrol__get_thread", "complete", "get_thread"),
        ("tool_result", "missioncontrol__get_thread: error", "error", "get_thread"),
    ]
    checks = [(p.resource, p.action, p.granted) async for p in PermissionEvent.objects.order_by("timestamp")]
    # Read-only tools are checked as reads, as routed tools with readOnlyHint are.
    assert checks == [
        ("missioncontrol/list_servers", "read", True),
        ("missioncontrol/get_thread", "read", True),
    ]


async def test_run_directive_runs_it_through_the_engine_and_answers_its_execution(endpoint: Endpoint) -> None:
    def scene() -> None:
        load_system_directives()
        now = timezone.now()
        store(
            event("thread.started", thread_id="T-old", timestamp=(now - timedelta(days=3)).isoformat()),
            mcp_id="agents",
        )

    await sync_to_async(scene)()
    run = answer(
        await call(
            endpoint, "missioncontrol__run_directive", {"directive": "cleanup_stale_sessions", "inputs": {}}
        )
    )
    assert run["directive"] == "cleanup_stale_sessions" and run["status"] == "completed", run
    assert run["result"]["ended"] == 1 and [t["id"] for t in run["result"]["threads"]] == ["T-old"]
    assert (await Thread.objects.aget(id="T-old")).status == "error"
    assert await Thread.objects.filter(id=run["thread_id"], mcp_id=AGGREGATE_ID).aexists()

    missing = await call(endpoint, "missioncontrol__run_directive", {"directive": "nope"})
    assert missing.is_error and "no directive named 'nope'" in missing.content[0].text
    bad = await call(
        endpoint,
        "missioncontrol__run_directive",
        {"directive": "heal_mcp_connection", "inputs": {}},
    )
    assert bad.is_error and "mcp_id" in bad.content[0].text


async def test_a_deny_policy_blocks_an_own_tool_like_a_routed_one(endpoint: Endpoint) -> None:
    from audit.models import PolicyRule
    from automations.models import DirectiveExecution

    await PolicyRule.objects.acreate(server="missioncontrol", tool="run_directive", effect="deny")
    result = await call(endpoint, "missioncontrol__run_directive", {"directive": "cleanup_stale_sessions"})
    assert result.is_error and "denied" in result.content[0].text.lower()
    await endpoint.batcher.flush()
    check = await PermissionEvent.objects.aget(resource="missioncontrol/run_directive")
    assert (check.action, check.granted) == ("execute", False)
    assert not await DirectiveExecution.objects.aexists()
