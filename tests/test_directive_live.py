"""Directive runs against real MCP servers through the gateway, and live on the WebSocket."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from audit.models import PermissionEvent
from automations import engine
from automations.models import Directive, DirectiveExecution
from automations.scope import SYSTEM
from mcps.gateway.service import Gateway
from tests.conftest import Socket
from threads.models import ExecutionStep, Thread

pytestmark = pytest.mark.django_db(transaction=True)

CLOCK = """
name: clock
permissions: ["execute:time/*", "read:*"]
inputs:
  zone: {type: string, default: UTC}
steps:
  - name: now
    tool: time__get_current_time
    arguments: {timezone: "{{ inputs.zone }}"}
  - script: generate_summary
    inputs: {window_hours: 1}
  - conditional:
      if: "{{ 'UTC' in steps.now.text }}"
      then:
        - server: time
          tool: convert_time
          arguments: {source_timezone: UTC, time: "12:00", target_timezone: Europe/Paris}
"""


def run(text: str, **inputs: Any) -> DirectiveExecution:
    return engine.submit(Directive.objects.upsert_from_yaml(text), inputs, acting_for=SYSTEM, wait=True)


@pytest.mark.skipif(shutil.which("node") is None, reason="the gateway fixture starts server-everything")
async def test_tool_steps_call_real_servers_through_the_gateway(gateway: Gateway) -> None:
    execution = await sync_to_async(run)(CLOCK)
    assert execution.status == "completed", execution.error
    steps = await sync_to_async(lambda: list(execution.step_runs.values_list("path", "kind", "output")))()
    assert [(p, k) for p, k, _ in steps] == [
        ("steps[0]", "tool"),
        ("steps[1]", "script"),
        ("steps[2]", "conditional"),
        ("steps[2].conditional.then[0]", "tool"),
    ]
    assert '"timezone": "UTC"' in steps[0][2]["text"]
    assert "Europe/Paris" in steps[3][2]["text"]
    # Each call is filed under the server that answered it, as a child of the run's thread.
    calls = await sync_to_async(
        lambda: list(
            Thread.objects.filter(parent_id=execution.thread_id)
            .order_by("started_at")
            .values_list("mcp_id", "status", "user_input")
        )
    )()
    assert [(mcp, status) for mcp, status, _ in calls] == [("time", "complete"), ("time", "complete")]
    assert calls[0][2].startswith("time__get_current_time")
    checks = await sync_to_async(
        lambda: sorted(
            PermissionEvent.objects.filter(thread_id=execution.thread_id).values_list(
                "action", "resource", "granted"
            )
        )
    )()
    assert checks == [
        ("execute", "time/convert_time", True),
        ("execute", "time/get_current_time", True),
        ("read", "logs", True),
        ("read", "permissions", True),
        ("read", "threads", True),
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="the gateway fixture starts server-everything")
async def test_a_tool_the_directive_may_not_call_is_denied(gateway: Gateway) -> None:
    execution = await sync_to_async(run)(
        "name: nosy\npermissions: ['execute:time/*']\nsteps:\n"
        "  - tool: git__git_status\n    arguments: {repo_path: .}\n"
    )
    assert execution.status == "failed"
    assert (
        execution.error
        == "steps[0]: permission 'execute:git/git_status' denied: not among the directive's permissions"
    )


async def test_a_tool_call_without_a_gateway_fails_the_step_with_a_clear_error() -> None:
    execution = await sync_to_async(run)(
        "name: lonely\npermissions: ['execute:*']\nsteps:\n  - tool: time__get_current_time\n"
    )
    assert execution.status == "failed"
    # "the MCP gateway is not running" (or, should some gateway answer, that it holds no 'time')
    assert execution.error.startswith("steps[0]: time/get_current_time: "), execution.error
    call = await Thread.objects.aget(parent_id=execution.thread_id)
    assert (call.status, call.error_count) == ("error", 1)
    result = await ExecutionStep.objects.aget(thread=call, step_type="tool_result")
    assert result.status == "error" and result.details["error"]


async def test_a_run_is_live_on_global_and_on_its_thread() -> None:
    directive = await sync_to_async(Directive.objects.upsert_from_yaml)(
        "name: summary\npermissions: ['read:*']\nsteps:\n  - script: generate_summary\n"
    )
    async with Socket() as ws:
        await ws.subscribe("global")
        execution = await sync_to_async(engine.submit)(directive, {}, acting_for=SYSTEM, wait=True)
        seen: list[dict[str, Any]] = []
        while not any(e.get("type") == "directive.execution" and e["status"] == "completed" for e in seen):
            seen += await ws.events("global")
    runs = [(e["execution_id"], e["status"]) for e in seen if e.get("type") == "directive.execution"]
    assert runs == [(execution.pk, "running"), (execution.pk, "completed")]
    created = [e for e in seen if e.get("type") == "thread.created"]
    assert [e["thread_id"] for e in created] == [execution.thread_id]
    assert created[0]["execution_context"]["directive"] == "summary"
