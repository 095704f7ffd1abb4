"""A directive run whose worker died: noticed by the sweep, taken up again from its last
completed step when what it was doing is safe to repeat, else failed as "worker lost";
cancel ends it at once; either way it stops counting against max_concurrent.

The workers' answer (Celery's `inspect().active()`) is stood in for here; a real worker
killed mid-run is in test_directive_worker_lost.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from automations import engine, runs, scripts
from automations.models import Directive, DirectiveExecution, StepRun
from automations.scripts import script
from mcps.models import MCPServer, Tool

pytestmark = pytest.mark.django_db

CALLS: list[str] = []


def note(label: str = "") -> dict[str, Any]:
    CALLS.append(label)
    return {"noted": label}


@pytest.fixture(autouse=True)
def _test_scripts() -> Iterator[None]:
    saved = dict(scripts._registry)
    script("test_read", "Reads.", permissions=["read:test"])(note)
    script("test_write", "Writes.", permissions=["write:test"])(note)
    CALLS.clear()
    yield
    scripts._registry.clear()
    scripts._registry.update(saved)


@pytest.fixture
def workers(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[str, int]]]:
    """What the Celery workers say they run (a test fills it); runs are handed to Celery."""
    running: dict[str, list[tuple[str, int]]] = {}
    monkeypatch.setattr(engine, "_running_tasks", lambda: running)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return running


def _directive(second: str, name: str = "two") -> Directive:
    return Directive.objects.upsert_from_yaml(
        f"""
name: {name}
permissions: [read:*, write:*, execute:*]
steps:
  - name: first
    script: test_read
    inputs: {{label: one}}
  - name: second
    {second}
  - name: third
    script: test_read
    inputs: {{label: "after {{{{ steps.first.noted }}}}"}}
"""
    )


def _lost_in_second_step(directive: Directive, task_id: str = "task-1") -> DirectiveExecution:
    """An execution as a worker killed in its second step leaves it."""
    long_ago = timezone.now() - timezone.timedelta(seconds=30)
    execution = DirectiveExecution.objects.create(
        directive=directive,
        directive_name=directive.name,
        status=DirectiveExecution.Status.RUNNING,
        started_at=long_ago,
        thread_id=f"directive-run-x-{task_id}",
        task_id=task_id,
        steps_run=2,
    )
    StepRun.objects.create(
        execution=execution,
        sequence=1,
        path="steps[0]",
        name="first",
        kind="script",
        status="completed",
        output={"noted": "one"},
    )
    StepRun.objects.create(execution=execution, sequence=2, path="steps[1]", name="second", kind="script")
    return execution


def test_the_sweep_takes_up_a_lost_run_from_its_last_completed_step_when_safe(
    workers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[int] = []
    monkeypatch.setattr(engine, "dispatch", handed.append)
    execution = _lost_in_second_step(_directive("script: test_read\n    inputs: {label: two}"))
    workers["another-task"] = [("w@h", 1)]

    assert engine.reap_lost() == 1
    execution.refresh_from_db()
    assert execution.status == "pending" and execution.resumes == 1 and handed == [execution.pk]

    engine.execute(execution.pk, task_id="task-2")  # what the new message's worker does
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert CALLS == ["two", "after one"]  # the first step is not repeated; its output is kept
    steps = [(s.sequence, s.path, s.status) for s in execution.step_runs.order_by("sequence")]
    assert steps == [
        (1, "steps[0]", "completed"),
        (2, "steps[1]", "failed"),
        (3, "steps[1]", "completed"),
        (4, "steps[2]", "completed"),
    ]
    assert "worker lost" in execution.step_runs.get(sequence=2).error
    assert execution.task_id == "task-2" and execution.started_at < timezone.now() - timezone.timedelta(
        seconds=20
    )


def test_a_lost_run_in_a_step_not_safe_to_repeat_fails_as_worker_lost_and_frees_its_slot(
    workers: dict[str, Any], settings: Any
) -> None:
    settings.DIRECTIVE_MAX_CONCURRENT = 1
    directive = _directive("script: test_write\n    inputs: {label: two}")
    execution = _lost_in_second_step(directive)
    with pytest.raises(runs.Busy):
        runs.start(None, directive)

    assert engine.reap_lost() == 1
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error.startswith("worker lost")
    assert execution.step_runs.get(sequence=2).status == "failed"
    assert CALLS == []
    assert DirectiveExecution.objects.running_for(directive) == 0


def test_a_tool_step_is_safe_to_repeat_only_when_its_server_says_so(workers: dict[str, Any]) -> None:
    MCPServer.objects.create(id="srv", name="srv")
    Tool.objects.create(server_id="srv", name="look", annotations={"readOnlyHint": True})
    Tool.objects.create(server_id="srv", name="send", annotations={"idempotentHint": False})
    looking = _lost_in_second_step(_directive("server: srv\n    tool: look", "looks"), "t-look")
    sending = _lost_in_second_step(_directive("server: srv\n    tool: send", "sends"), "t-send")
    assert engine.repeatable(looking) and not engine.repeatable(sending)


def test_a_run_still_on_a_live_worker_is_left_alone(workers: dict[str, Any]) -> None:
    execution = _lost_in_second_step(_directive("script: test_write\n    inputs: {label: two}"))
    workers["task-1"] = [("w@h", 1234)]
    assert engine.reap_lost() == 0
    execution.refresh_from_db()
    assert execution.status == "running"
    # Its own message delivered again while it still runs elsewhere: nothing is done twice.
    engine.execute(execution.pk, task_id="task-1", worker="w@h")
    execution.refresh_from_db()
    assert execution.status == "running" and CALLS == []


def test_its_own_message_delivered_again_after_its_worker_died_takes_it_up_here(
    workers: dict[str, Any],
) -> None:
    execution = _lost_in_second_step(_directive("script: test_read\n    inputs: {label: two}"))
    workers["task-1"] = [("w@h", os.getpid())]  # only this delivery runs it
    engine.execute(execution.pk, task_id="task-1", worker="w@h")
    execution.refresh_from_db()
    assert execution.status == "completed" and execution.summary()["resumes"] == 1
    assert CALLS == ["two", "after one"]


def test_cancel_ends_a_run_whose_worker_is_gone_at_once(workers: dict[str, Any]) -> None:
    execution = _lost_in_second_step(_directive("script: test_read\n    inputs: {label: two}"))
    assert engine.cancel(execution)
    execution.refresh_from_db()
    assert execution.status == "cancelled" and execution.completed_at is not None
    assert execution.step_runs.get(sequence=2).status == "cancelled"


def test_cancel_of_a_run_on_a_live_worker_only_asks(workers: dict[str, Any]) -> None:
    execution = _lost_in_second_step(_directive("script: test_read\n    inputs: {label: two}"))
    workers["task-1"] = [("w@h", 1)]
    assert engine.cancel(execution)
    execution.refresh_from_db()
    assert execution.status == "running" and execution.cancel_requested


def test_a_run_that_keeps_killing_its_worker_is_failed_at_last(workers: dict[str, Any]) -> None:
    execution = _lost_in_second_step(_directive("script: test_read\n    inputs: {label: two}"))
    DirectiveExecution.objects.filter(pk=execution.pk).update(resumes=engine.MAX_RESUMES)
    assert engine.reap_lost() == 1
    execution.refresh_from_db()
    assert execution.status == "failed" and "not taken up again" in execution.error
