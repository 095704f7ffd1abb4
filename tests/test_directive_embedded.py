"""On the embedded default, runs leave the request at once and run on the web process's loop;
the in-process scheduler ticks the cron automations."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from automations.models import Automation, Directive, DirectiveExecution
from mcps.gateway import embedded
from mcps.gateway.service import Gateway
from missioncontrol.scheduler import InProcessScheduler
from tests.mcp_servers import api, until

pytestmark = pytest.mark.django_db(transaction=True)

CLOCK = """name: clock
permissions: ["execute:time/*"]
steps:
  - tool: time__get_current_time
    arguments: {timezone: UTC}
"""


@pytest.fixture
def web_loop() -> Iterator[None]:
    """As if the web process had started its embedded gateway and scheduler on this loop."""
    yield
    embedded._loop = None


def status_of(pk: int) -> str:
    return DirectiveExecution.objects.get(pk=pk).status


@pytest.mark.skipif(shutil.which("node") is None, reason="the gateway fixture starts server-everything")
async def test_execute_answers_at_once_and_the_run_calls_tools_off_the_request(
    gateway: Gateway, web_loop: None, settings: Any
) -> None:
    import asyncio

    embedded._loop = asyncio.get_running_loop()
    await sync_to_async(Directive.objects.upsert_from_yaml)(CLOCK)
    response = await api("POST", "/api/internal/execute", {"directive": "clock"})
    assert response.status_code == 202, response.text
    execution = response.json()
    assert execution["status"] in ("pending", "running")  # handed over, not run inside the request
    await until(lambda: status_of(execution["id"]) == "completed", timeout=20, what="the run")
    detail = (await api("GET", f"/api/internal/executions/{execution['id']}")).json()
    assert '"timezone": "UTC"' in detail["steps"][0]["output"]["text"]


async def test_the_in_process_scheduler_fires_due_cron_automations(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC)  # no minute boundary to cross mid-test
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    directive = await sync_to_async(Directive.objects.upsert_from_yaml)(
        "name: summary\npermissions: ['read:*']\nsteps:\n  - script: generate_summary\n"
    )
    await sync_to_async(Automation.objects.create)(
        name="every minute",
        directive=directive,
        trigger="schedule",
        schedule="* * * * *",
        created_at=frozen - timedelta(minutes=1),  # due at 10:00, the minute after it was made
    )
    scheduler = InProcessScheduler({"tick": {"task": "automations.tick", "schedule": 0.2}})
    scheduler.start()
    try:
        await until(
            lambda: DirectiveExecution.objects.filter(status="completed").exists(), timeout=10, what="a run"
        )
        await until(lambda: scheduler.runs.get("tick", 0) >= 3, timeout=10, what="more ticks")
    finally:
        await scheduler.stop()
    # Several ticks within the same minute: one run.
    assert await sync_to_async(DirectiveExecution.objects.filter(triggered_by="schedule").count)() == 1
