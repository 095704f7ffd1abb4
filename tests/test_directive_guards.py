"""Runaway guards: each one tripped by the directive it is there to stop."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone

from automations import engine, scripts, triggers
from automations.models import Automation, Directive, DirectiveExecution
from automations.scope import SYSTEM
from automations.scripts import script
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db

_release = threading.Event()
_entered = threading.Event()


def ping() -> dict[str, Any]:
    return {"pong": True}


def spin() -> dict[str, Any]:
    while True:
        time.sleep(0.01)


def hold() -> dict[str, Any]:
    _entered.set()
    _release.wait(10)
    return {"held": True}


def broken() -> dict[str, Any]:
    raise RuntimeError("broken on purpose")


def alarm() -> dict[str, Any]:
    """Raises an alert without saying which run it comes from."""
    triggers.publish_alert("anomaly.detected", {"id": uuid.uuid4().hex, "kind": "slow"})
    return {"alerted": True}


@pytest.fixture(autouse=True)
def _test_scripts() -> Iterator[None]:
    """Scripts for these tests, registered for each test and gone after it."""
    saved = dict(scripts._registry)
    script("test_ping", "Answers pong.", permissions=["read:test"])(ping)
    script("test_spin", "Spins until its watchdog stops it.", permissions=["read:test"])(spin)
    script("test_hold", "Holds until released (for concurrency tests).", permissions=["read:test"])(hold)
    script("test_broken", "Always fails.", permissions=["read:test"])(broken)
    script("test_alarm", "Raises an anomaly alert.", permissions=["read:test"])(alarm)
    yield
    scripts._registry.clear()
    scripts._registry.update(saved)


def publish(*events: dict[str, Any]) -> None:
    """Ingest `events` and publish them, as the ingest endpoint does once they are stored."""
    result = ingest(list(events), Source(mcp_id="agents"))
    assert all(v.status == "accepted" for v in result.verdicts), result.verdicts
    async_to_sync(result.outbox.send)()


def run(text: str, **inputs: Any) -> DirectiveExecution:
    return engine.submit(Directive.objects.upsert_from_yaml(text), inputs, acting_for=SYSTEM, wait=True)


def test_a_huge_foreach_is_refused_before_it_starts(settings: Any) -> None:
    settings.DIRECTIVE_MAX_FOREACH_ITEMS = 50
    execution = run(
        "name: huge\npermissions: [read:test]\nsteps:\n"
        "  - foreach: '{{ range(5000) }}'\n    steps: [{script: test_ping}]\n"
    )
    assert execution.status == "failed"
    assert "foreach over 5000 items is more than 50 (automations.max_foreach_items)" in execution.error
    assert execution.step_runs.count() == 1


def test_a_run_stops_after_max_steps(settings: Any) -> None:
    settings.DIRECTIVE_MAX_STEPS = 10
    execution = run(
        "name: long\npermissions: [read:test]\nsteps:\n"
        "  - foreach: '{{ range(40) }}'\n    steps: [{script: test_ping}]\n"
    )
    assert execution.status == "failed" and "more than 10 steps (automations.max_steps)" in execution.error
    assert execution.steps_run == 10


def test_an_endless_step_is_stopped_by_its_timeout(settings: Any) -> None:
    settings.DIRECTIVE_STEP_TIMEOUT = 0.5
    started = time.monotonic()
    execution = run(
        "name: endless\npermissions: [read:test]\nsteps:\n  - script: test_spin\n  - script: test_ping\n"
    )
    assert time.monotonic() - started < 5
    assert execution.status == "failed"
    assert execution.error == "steps[0]: did not finish within 0.5 s"
    assert list(execution.step_runs.values_list("status", flat=True)) == ["failed"]


def test_a_step_timeout_below_the_default_applies(settings: Any) -> None:
    execution = run(
        "name: quick\npermissions: [read:test]\nsteps:\n  - script: test_spin\n    timeout_seconds: 0.3\n"
    )
    assert execution.error == "steps[0]: did not finish within 0.3 s"


def test_a_run_stops_at_its_run_timeout(settings: Any) -> None:
    settings.DIRECTIVE_RUN_TIMEOUT = 0.4
    execution = run(
        "name: slow_run\npermissions: [read:test]\nsteps:\n  - script: test_spin\n  - script: test_ping\n"
    )
    assert execution.status == "failed"
    assert execution.error == "steps[0]: the run took longer than 0.4 s (automations.run_timeout)"


def test_a_cancelled_run_stops_in_the_middle_of_its_step(settings: Any) -> None:
    d = Directive.objects.upsert_from_yaml(
        "name: cancel_me\npermissions: [read:test]\nsteps:\n  - script: test_spin\n"
    )
    execution = DirectiveExecution.objects.create(directive=d, directive_name=d.name)

    def cancel_soon() -> None:
        time.sleep(0.3)
        flag = engine._local.get(execution.pk)
        assert flag is not None
        flag.set()  # what engine.cancel does for a run in this process

    helper = threading.Thread(target=cancel_soon)
    helper.start()
    started = time.monotonic()
    done = engine.execute(execution.pk)
    helper.join()
    assert done is not None and done.status == "cancelled"
    assert time.monotonic() - started < 3
    assert list(done.step_runs.values_list("status", flat=True)) == ["cancelled"]


def test_a_pending_run_cancelled_never_starts() -> None:
    d = Directive.objects.upsert_from_yaml(
        "name: never\npermissions: [read:test]\nsteps:\n  - script: test_ping\n"
    )
    execution = DirectiveExecution.objects.create(directive=d, directive_name=d.name)
    assert engine.cancel(execution) is True
    assert engine.execute(execution.pk).status == "cancelled"
    assert not execution.step_runs.exists()
    assert engine.cancel(execution) is False


@pytest.mark.django_db(transaction=True)
def test_a_directive_runs_at_most_max_concurrent_times_at_once(settings: Any) -> None:
    settings.DIRECTIVE_MAX_CONCURRENT = 1
    _release.clear()
    _entered.clear()
    d = Directive.objects.upsert_from_yaml(
        "name: single\npermissions: [read:test]\nsteps:\n  - script: test_hold\n"
    )
    first = (
        engine.submit(d, acting_for=SYSTEM, wait=False)
        if False
        else DirectiveExecution.objects.create(directive=d, directive_name=d.name)
    )

    def run_first() -> None:
        try:
            engine.execute(first.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=run_first)
    worker.start()
    assert _entered.wait(10)
    second = engine.submit(d, acting_for=SYSTEM, wait=True)
    _release.set()
    worker.join(10)
    assert second.status == "failed"
    assert second.error == "1 runs of single are already running (automations.max_concurrent is 1)"
    first.refresh_from_db()
    assert first.status == "completed"


@pytest.mark.django_db(transaction=True)
def test_an_automation_that_triggers_itself_stops_at_max_depth(settings: Any) -> None:
    settings.DIRECTIVE_MAX_DEPTH = 2
    d = Directive.objects.upsert_from_yaml(
        "name: loop\npermissions: [read:test]\nsteps:\n  - script: test_broken\n"
    )
    Automation.objects.create(
        name="retry failures",
        directive=d,
        trigger="event",
        event_type="thread.ended",
        filters={"status": "error"},
    )
    # An agent's thread fails: the automation runs, fails, its own thread's end fires it again...
    publish(
        event("thread.started", 0, thread_id="agent-1"),
        event("thread.ended", 1, thread_id="agent-1", status="error"),
    )
    runs = list(DirectiveExecution.objects.order_by("id").values_list("depth", "status", "error"))
    assert [(depth, status) for depth, status, _ in runs] == [
        (0, "failed"),
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert runs[-1][2].startswith("refused: depth 3 is past automations.max_depth (2)")
    assert [e for _, _, e in runs[:3]] == ["steps[0]: broken on purpose"] * 3


def test_a_run_whose_worker_died_is_failed_by_the_tick(settings: Any) -> None:
    settings.DIRECTIVE_RUN_TIMEOUT = 60
    d = Directive.objects.upsert_from_yaml(
        "name: lost\npermissions: [read:test]\nsteps:\n  - script: test_ping\n"
    )
    now = timezone.now()
    lost = DirectiveExecution.objects.create(
        directive=d, directive_name=d.name, status="running", started_at=now - timedelta(seconds=121)
    )
    alive = DirectiveExecution.objects.create(
        directive=d, directive_name=d.name, status="running", started_at=now - timedelta(seconds=100)
    )
    assert engine.reap_lost(now) == 1
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert (lost.status, alive.status) == ("failed", "running")
    assert lost.error.startswith("lost:")


@pytest.mark.django_db(transaction=True)
def test_an_alert_raised_by_a_runs_own_script_cannot_retrigger_it_endlessly(settings: Any) -> None:
    settings.DIRECTIVE_MAX_DEPTH = 1
    d = Directive.objects.upsert_from_yaml(
        "name: alarm\npermissions: [read:test]\nsteps:\n  - script: test_alarm\n"
    )
    Automation.objects.create(name="on anomaly", directive=d, trigger="alert", event_type="anomaly.detected")
    triggers.publish_alert("anomaly.detected", {"id": "outside-1", "kind": "slow"})
    runs = list(DirectiveExecution.objects.order_by("id").values_list("depth", "status"))
    assert runs == [(0, "completed"), (1, "completed"), (2, "failed")]
    assert DirectiveExecution.objects.order_by("id").last().error.startswith("refused: depth 2")
