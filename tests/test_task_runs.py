"""Celery task runs: recorded, and never stuck when a worker dies mid-execution."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.db.models.functions import Now

from missioncontrol import taskruns
from missioncontrol.models import TaskRun
from missioncontrol.tasks import drain_spool, sweep_task_runs
from tests.celery_tasks import refuse
from tests.faults import PrivateRedis
from tests.processes import ROOT, clean_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_records_a_successful_run_with_its_arguments_digest() -> None:
    result = drain_spool.apply()
    run = TaskRun.objects.get(task_id=result.id)
    assert (run.name, run.status, run.deliveries) == ("missioncontrol.drain_spool", "succeeded", 1)
    assert run.args_digest == taskruns.args_digest((), {})
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_it_records_a_failure_with_its_error() -> None:
    result = refuse.apply(args=["no disk"], throw=False)
    run = TaskRun.objects.get(task_id=result.id)
    assert (run.status, run.error) == ("failed", "ValueError: no disk")
    assert run.args_digest == taskruns.args_digest(["no disk"], {}) != taskruns.args_digest(["other"], {})


def test_a_restarted_worker_marks_what_it_was_running_lost() -> None:
    TaskRun.objects.create(task_id="a", name="x", args_digest="d", worker="w1@host")
    TaskRun.objects.create(task_id="b", name="x", args_digest="d", worker="w2@host")

    class Consumer:
        hostname = "w1@host"

    taskruns.worker_ready(sender=Consumer())
    assert dict(TaskRun.objects.values_list("task_id", "status")) == {"a": "lost", "b": "started"}


def test_the_sweep_marks_lost_only_runs_older_than_the_time_limit() -> None:
    old = TaskRun.objects.create(task_id="old", name="x", args_digest="d")
    # started_at is stamped by the database's clock, and the sweep reads that clock too.
    TaskRun.objects.filter(pk=old.pk).update(
        started_at=Now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    )
    TaskRun.objects.create(task_id="young", name="x", args_digest="d")
    assert sweep_task_runs.apply().get() == 1
    assert dict(TaskRun.objects.filter(task_id__in=["old", "young"]).values_list("task_id", "status")) == {
        "old": "lost",
        "young": "started",
    }


def test_task_runs_are_listed_in_the_admin(admin_client: Any) -> None:
    run = drain_spool.apply()
    page = admin_client.get("/admin/missioncontrol/taskrun/")
    assert page.status_code == 200 and run.id in page.content.decode()


def test_the_settings_make_execution_at_least_once() -> None:
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_TIME_LIMIT > settings.CELERY_TASK_SOFT_TIME_LIMIT


# --- a real worker, killed -------------------------------------------------------------


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


class Worker:
    def __init__(self, broker: str, name: str, log: Path, **env: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "missioncontrol",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
                "-n",
                name,
                "-I",
                "tests.celery_tasks",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=clean_env(
                DATABASE_URL=_database_url(),
                REDIS_URL=broker,
                SECRET_KEY="test-only",
                MC_CONN_MAX_AGE="0",
                MC_DATA_DIR=str(log.parent / "data"),
                **env,
            ),
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def _wait(predicate: Callable[[], Any], timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    server = PrivateRedis(tmp_path, persistent=False)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.kill()


def _started(task_id: str, deliveries: int = 1) -> TaskRun | None:
    return TaskRun.objects.filter(task_id=task_id, status="started", deliveries=deliveries).first()


@pytest.mark.slow
def test_a_killed_pool_process_has_its_task_run_again(broker: str, tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "worker.log"
    worker = Worker(broker, "pool@test", log)
    try:
        task_id = Celery(broker=broker).send_task("tests.slow_mark", args=[str(marks), 1.5]).id
        run = _wait(lambda: _started(task_id), 90, "the run to start", log)
        os.kill(run.pid, signal.SIGKILL)  # the pool child, mid-execution
        _wait(
            lambda: TaskRun.objects.filter(task_id=task_id, status="succeeded").exists(), 60, "a rerun", log
        )
    finally:
        worker.stop()
    run = TaskRun.objects.get(task_id=task_id)
    assert run.deliveries == 2 and run.error == "an earlier execution was lost with its worker"
    lines = marks.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["start", "start", "done"]


@pytest.mark.slow
def test_a_killed_worker_leaves_its_run_lost_and_the_message_runs_again(broker: str, tmp_path: Path) -> None:
    marks, log = tmp_path / "marks", tmp_path / "worker.log"
    limits = {"MC_CELERY_TASK_TIME_LIMIT": "5", "MC_CELERY_VISIBILITY_TIMEOUT": "6"}
    worker = Worker(broker, "whole@test", log, **limits)
    try:
        task_id = Celery(broker=broker).send_task("tests.slow_mark", args=[str(marks), 2]).id
        _wait(lambda: _started(task_id), 90, "the run to start", log)
        worker.kill()  # the whole worker: nobody is left to requeue the message
        assert TaskRun.objects.get(task_id=task_id).status == "started"
        # Past the visibility timeout, a starting worker restores the message at once
        # (a running one scans for such messages only every ~100 s: kombu's throttle).
        time.sleep(7)
        worker = Worker(broker, "whole@test", log, **limits)
        _wait(
            lambda: (
                TaskRun.objects.filter(task_id=task_id, status="lost").exists()
                or TaskRun.objects.filter(task_id=task_id, deliveries=2).exists()
            ),
            90,
            "the run marked lost",
            log,
        )
        # The broker redelivers the unacknowledged message after the visibility timeout.
        _wait(
            lambda: TaskRun.objects.filter(task_id=task_id, status="succeeded").exists(), 90, "a rerun", log
        )
    finally:
        worker.stop()
    assert TaskRun.objects.get(task_id=task_id).deliveries == 2
    assert marks.read_text().splitlines()[-1] == "done"
