"""A Kiwi `execute` of a directive through the gateway becomes a thread of its own: linked
to the directive in the graph, its steps on the timeline, and the session's later calls
checked against the directive's declared permissions as permission events.

Real stdio servers behind a real gateway: the Kiwi-shaped server (tests/servers/kiwi_like.py,
on the `mcp` SDK) reading the fixture workspace, mcp-server-time and server-everything.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from mcp import Client

from audit.models import PermissionEvent
from kiwi.models import KiwiWorkspace
from mcps.endpoint.recorder import CallRecorder
from mcps.endpoint.router import LocalRouter
from mcps.endpoint.server import KIWI_THREAD_META_KEY, build_server
from mcps.gateway.service import Gateway
from missioncontrol.graph import Graph
from missioncontrol.ingest.batcher import EventBatcher
from tests.kiwi_workspace import KiwiFixture, kiwi_workspace
from tests.mcp_servers import register, status, until
from threads.models import ExecutionStep, Thread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is needed for server-everything"),
]

KIWI_LIKE = Path(__file__).parent / "servers" / "kiwi_like.py"


@dataclasses.dataclass
class Agent:
    """An agent's MCP session with Mission Control's aggregated endpoint (as /mcp serves it)."""

    server: Any
    batcher: EventBatcher

    def client(self) -> Client:
        return Client(self.server)  # type: ignore[arg-type]


@pytest.fixture
async def kiwi(tmp_path: Path, gateway: Gateway) -> AsyncIterator[KiwiFixture]:
    fixture = kiwi_workspace(tmp_path)
    old = settings.MC
    settings.MC = dataclasses.replace(old, kiwi=fixture.config(server="kiwi"))

    def index() -> None:
        KiwiWorkspace.objects.configure(settings.MC.kiwi)
        KiwiWorkspace.objects.index_all()
        register(
            "kiwi",
            transport="stdio",
            command=sys.executable,
            args=[str(KIWI_LIKE)],
            env={"USER_SPACE": str(fixture.user_space)},
        )

    await sync_to_async(index)()
    await gateway.discover()
    await until(lambda: status("kiwi") == "connected", what="the Kiwi-like server to connect")
    try:
        yield fixture
    finally:
        settings.MC = old


@pytest.fixture
async def agent(gateway: Gateway, kiwi: KiwiFixture) -> AsyncIterator[Agent]:
    batcher = EventBatcher("kiwi calls", linger=0)
    recorder = CallRecorder(batcher)

    def session_of(ctx: Any) -> Any:
        return recorder.session(("agent",), via="test", principal="alice", client={"name": "pytest"})

    yield Agent(build_server(LocalRouter(gateway), recorder, session_of), batcher)
    await batcher.flush()


def run_deploy(kiwi: KiwiFixture, directive: str = "deploy_app") -> tuple[str, dict[str, Any]]:
    return "kiwi__execute", {
        "item_type": "directive",
        "action": "run",
        "item_id": directive,
        "parameters": {"environment": "staging"},
        "project_path": str(kiwi.project),
    }


async def test_an_execute_call_becomes_a_thread_with_the_directives_steps_and_permission_checks(
    agent: Agent, kiwi: KiwiFixture
) -> None:
    async with agent.client() as client:
        started = await client.call_tool(*run_deploy(kiwi))
        assert not started.is_error
        assert json.loads(started.content[0].text)["name"] == "deploy_app"  # Kiwi-like answered
        run_id = started.meta[KIWI_THREAD_META_KEY]
        allowed = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        denied = await client.call_tool("everything__echo", {"message": "hi"})
    await agent.batcher.flush()

    assert not allowed.is_error and allowed.meta["mc/thread_id"] == run_id
    assert denied.is_error and "declares no permission" in denied.content[0].text
    session = await Thread.objects.aget(parent__isnull=True)
    run = await Thread.objects.aget(id=run_id)
    assert started.meta["mc/thread_id"] == session.id  # the execute call's own thread
    # The execute call is a thread of the Kiwi server that ended with it; the run is its
    # child, in the same client session, and gathers the session's later calls.
    assert (session.mcp_id, session.status) == ("kiwi", "complete")
    assert run.session_id is not None and run.session_id == session.session_id
    assert (run.parent_id, run.mcp_id, run.user_input) == (
        session.id,
        "kiwi",
        "Kiwi directive deploy_app 1.2.0 on kiwi",
    )
    context = run.execution_context
    assert context["kind"] == "kiwi_directive"
    assert {k: context["kiwi"][k] for k in ("key", "version", "path", "parameters", "started_by")} == {
        "key": "shop/deploy_app",
        "version": "1.2.0",
        "path": "directives/deploy/deploy_app.md",
        "parameters": {"environment": "staging"},
        "started_by": session.id,
    }
    assert [(p["tag"], p["resource"]) for p in context["kiwi"]["permissions"]] == [
        ("execute", "tool"),
        ("read", "filesystem"),
        ("execute", "shell"),
    ]

    steps = [s async for s in ExecutionStep.objects.filter(thread=run).order_by("sequence")]
    assert [(s.sequence, s.step_type, s.description, s.status) for s in steps] == [
        (0, "directive", "check_window", "pending"),
        (1, "directive", "build", "pending"),
        (2, "directive", "ship", "pending"),
        (3, "tool_call", "time__get_current_time", "complete"),
        (4, "tool_result", "time__get_current_time: ok", "complete"),
        (5, "tool_call", "everything__echo", "complete"),
        (6, "tool_result", "everything__echo: denied", "error"),
    ]
    assert steps[0].details["description"] == "Check the deployment window"
    session_steps = [s async for s in ExecutionStep.objects.filter(thread=session).order_by("sequence")]
    assert [s.description for s in session_steps] == ["kiwi__execute", "kiwi__execute: ok"]

    checks = [p async for p in PermissionEvent.objects.filter(thread=run).order_by("timestamp")]
    assert [(c.resource, c.granted) for c in checks] == [
        ("time/get_current_time", True),
        ("everything/echo", False),
    ]
    source = "kiwi directive deploy_app 1.2.0"
    assert checks[0].rules_checked == [
        {
            "id": "kiwi:shop/deploy_app#1",
            "description": '<execute resource="tool" id="time/*"/>',
            "effect": "allow",
            "matched": True,
            "source": source,
        }
    ]
    assert checks[0].reason.endswith(f'declared by {source}: <execute resource="tool" id="time/*"/>')
    assert checks[1].rules_checked == [{**checks[0].rules_checked[0], "matched": False}]
    assert checks[1].reason == f"alice may not read everything/echo: {source} declares no permission for it"
    assert checks[1].severity == "warn"

    def graph_edges() -> set[tuple[str, str, str]]:
        _, edges = Graph().relationships(("executed", "child_of"), entity_id=f"thread:{run_id}")
        return {(e["kind"], e["source"], e["target"]) for e in edges}

    assert await sync_to_async(graph_edges)() == {
        ("executed", f"thread:{run_id}", "kiwi_directive:shop/deploy_app"),
        ("child_of", f"thread:{run_id}", f"thread:{session.id}"),
    }


async def test_a_run_may_not_start_a_directive_its_permissions_do_not_declare(
    agent: Agent, kiwi: KiwiFixture
) -> None:
    async with agent.client() as client:
        first = (await client.call_tool(*run_deploy(kiwi))).meta[KIWI_THREAD_META_KEY]
        # deploy_app does not declare Kiwi's own tools: its run may not start another directive.
        refused = await client.call_tool(*run_deploy(kiwi, "smoke_tests"))
        assert refused.is_error and KIWI_THREAD_META_KEY not in (refused.meta or {})
        await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    await agent.batcher.flush()
    assert await Thread.objects.filter(execution_context__kind="kiwi_directive").acount() == 1
    assert await PermissionEvent.objects.filter(thread_id=first, granted=True).acount() == 1


async def test_a_directive_no_workspace_holds_still_gets_its_thread_without_checks(
    agent: Agent, kiwi: KiwiFixture
) -> None:
    unindexed = kiwi.ai / "directives" / "late.md"
    unindexed.write_text((kiwi.ai / "directives" / "build" / "build_app.md").read_text())  # not indexed yet
    async with agent.client() as client:
        started = await client.call_tool(*run_deploy(kiwi, "late"))
        run_id = started.meta[KIWI_THREAD_META_KEY]
        echoed = await client.call_tool("everything__echo", {"message": "hi"})
    await agent.batcher.flush()
    assert not echoed.is_error
    run = await Thread.objects.aget(id=run_id)
    assert run.execution_context["kiwi"]["indexed"] is False
    assert not await ExecutionStep.objects.filter(thread=run, step_type="directive").aexists()
    check = await PermissionEvent.objects.aget(thread=run)
    assert check.granted and check.rules_checked == []
