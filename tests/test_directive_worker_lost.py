"""A directive run whose real Celery worker is killed mid-run (a private Redis as broker).

- its pool process killed in a step safe to repeat: Celery requeues the message at once
  (acks_late, reject_on_worker_lost) and the run goes on from its last completed step;
- the whole worker killed in a step that writes: one sweep (the minute tick's
  `reap_lost`, run as beat would) fails it as "worker lost", and it no longer counts
  against max_concurrent;
- the whole worker killed, then cancel: the run ends at once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from automations.models import Directive, DirectiveExecution, StepRun
from tests import celery_tasks  # noqa: F401 (registers the scripts the directives use)
from tests.faults import PrivateRedis
from tests.processes import ROOT, clean_env
from tests.test_task_runs import Worker, _database_url, _wait

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    server = PrivateRedis(tmp_path, persistent=False)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.kill()


def _directive(name: str, script: str, marks: Path, seconds: float) -> Directive:
    return Directive.objects.upsert_from_yaml(
        f"""
name: {name}
permissions: [read:*, write:*]
steps:
  - name: first
    script: tests_wait_read
    inputs: {{path: "{marks}.first", seconds: 0.1}}
  - name: second
    script: {script}
    inputs: {{path: "{marks}", seconds: {seconds}}}
  - name: third
    script: tests_wait_read
    inputs: {{path: "{marks}.third", seconds: 0.1}}
"""
    )


def _start(broker_url: str, directive: Directive) -> DirectiveExecution:
    execution = DirectiveExecution.objects.create(directive=directive, directive_name=directive.name)
    Celery(broker=broker_url).send_task("automations.run_execution", args=[execution.pk])
    return execution


def _in_second_step(execution: DirectiveExecution, marks: Path, log: Path) -> int:
    """The pid of the pool process running the second step, once it runs it."""
    _wait(lambda: marks.exists() and marks.read_text().startswith("start"), 90, "the second step", log)
    return int(marks.read_text().split()[1])


def _manage(broker_url: str, code: str) -> str:
    """`manage.py shell -c code` against this test's database and the private broker (as beat runs)."""
    import subprocess
    import sys

    env = clean_env(
        DATABASE_URL=_database_url(), REDIS_URL=broker_url, SECRET_KEY="test-only", MC_CONN_MAX_AGE="0"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _status(execution: DirectiveExecution) -> str:
    execution.refresh_from_db()
    return execution.status


def test_a_killed_pool_process_has_its_run_go_on_from_the_last_completed_step(
    broker: str, tmp_path: Path
) -> None:
    marks, log = tmp_path / "marks", tmp_path / "worker.log"
    worker = Worker(broker, "pool@test", log)
    try:
        execution = _start(broker, _directive("reads", "tests_wait_read", marks, 3))
        os.kill(_in_second_step(execution, marks, log), signal.SIGKILL)
        killed = time.monotonic()
        _wait(lambda: _status(execution) in ("completed", "failed"), 90, "the run to end", log)
        print(f"\nrun taken up again and completed {time.monotonic() - killed:.2f} s after the kill")
    finally:
        worker.stop()
    assert execution.status == "completed", execution.error
    assert execution.resumes == 1
    assert [line.split()[0] for line in marks.read_text().splitlines()] == ["start", "start", "done"]
    assert Path(f"{marks}.first").read_text().count("start") == 1  # done before: not repeated
    steps = [(s.path, s.status) for s in execution.step_runs.order_by("sequence")]
    assert steps == [
        ("steps[0]", "completed"),
        ("steps[1]", "failed"),
        ("steps[1]", "completed"),
        ("steps[2]", "completed"),
    ]


def test_a_killed_worker_in_a_step_that_writes_is_failed_by_one_sweep(broker: str, tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "worker.log"
    worker = Worker(broker, "whole@test", log)
    try:
        directive = _directive("writes", "tests_wait_write", marks, 30)
        execution = _start(broker, directive)
        _in_second_step(execution, marks, log)
        worker.kill()
        killed = time.monotonic()
        time.sleep(5)  # past the claim's grace, as any sweep a minute apart is
        assert _status(execution) == "running"
        swept = _manage(broker, "from automations.engine import reap_lost; print(reap_lost())")
        print(f"\nrun failed by the sweep {time.monotonic() - killed:.2f} s after the kill")
    finally:
        worker.stop()
    assert swept.split()[-1] == "1"
    assert _status(execution) == "failed" and execution.error.startswith("worker lost")
    assert execution.step_runs.get(path="steps[1]").status == StepRun.Status.FAILED
    assert DirectiveExecution.objects.running_for(directive) == 0
    assert marks.read_text().split()[0] == "start" and "done" not in marks.read_text()


def test_cancel_ends_a_run_whose_worker_was_killed_at_once(broker: str, tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "worker.log"
    worker = Worker(broker, "cancel@test", log)
    try:
        execution = _start(broker, _directive("cancels", "tests_wait_write", marks, 30))
        _in_second_step(execution, marks, log)
        worker.kill()
        started = time.monotonic()
        _manage(
            broker,
            "from automations import engine; from automations.models import DirectiveExecution; "
            f"print(engine.cancel(DirectiveExecution.objects.get(pk={execution.pk})))",
        )
        print(f"\ncancel of a run whose worker died took {time.monotonic() - started:.2f} s")
    finally:
        worker.stop()
    assert _status(execution) == "cancelled"
    assert execution.step_runs.get(path="steps[1]").status == StepRun.Status.CANCELLED
