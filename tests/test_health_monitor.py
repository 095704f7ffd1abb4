"""The health monitor: system directives scheduled as system automations, run by the minute tick."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automations import tasks
from automations.models import Automation, DirectiveExecution
from automations.system import SYSTEM_SCHEDULES, load_system_directives
from tests.conftest import event, store
from threads.models import Thread

pytestmark = pytest.mark.django_db


def test_loading_the_system_directives_schedules_the_health_ones_once_and_keeps_an_operators_change() -> None:
    first = load_system_directives()
    assert sorted(first.scheduled) == sorted(SYSTEM_SCHEDULES)
    monitor = Automation.objects.get(name="system:monitor_thread_health")
    assert (monitor.trigger, monitor.schedule, monitor.directive.name) == (
        "schedule",
        "*/5 * * * *",
        "monitor_thread_health",
    )
    monitor.schedule = "*/10 * * * *"
    monitor.enabled = False
    monitor.save()

    assert load_system_directives().scheduled == []
    monitor.refresh_from_db()
    assert (monitor.schedule, monitor.enabled) == ("*/10 * * * *", False)


def test_the_beat_tick_runs_monitor_thread_health_which_flags_the_stalled_thread_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    # The next */5 minute mark: the tick runs a few seconds after it.
    mark = now + timedelta(minutes=(5 - now.minute % 5) % 5 or 5)
    idle, busy = mark - timedelta(minutes=30), mark - timedelta(seconds=20)
    store(
        event("thread.started", thread_id="T-idle", timestamp=idle.isoformat()),
        event("thread.step", thread_id="T-idle", sequence=1, timestamp=idle.isoformat()),
        event("thread.started", thread_id="T-busy", timestamp=busy.isoformat()),
        event("thread.step", thread_id="T-busy", sequence=1, timestamp=busy.isoformat()),
        mcp_id="agents",
    )
    load_system_directives()
    monitor = Automation.objects.filter(name="system:monitor_thread_health")
    Automation.objects.exclude(pk__in=monitor).update(enabled=False)
    monitor.update(created_at=now - timedelta(minutes=6))
    monkeypatch.setattr(timezone, "now", lambda: mark + timedelta(seconds=3))

    fired = tasks.tick.apply().get()

    execution = DirectiveExecution.objects.get()
    assert fired == [execution.pk]
    assert (execution.directive_name, execution.triggered_by, execution.status) == (
        "monitor_thread_health",
        "schedule",
        "completed",
    )
    assert execution.result["stalled"] == 1
    stalled = {t.id: t.stalled_at is not None for t in Thread.objects.filter(id__in=["T-idle", "T-busy"])}
    assert stalled == {"T-idle": True, "T-busy": False}
    # The run is itself a thread, on Mission Control's own server.
    assert Thread.objects.filter(id=execution.thread_id, mcp_id="mission-control").exists()
