"""Every Celery task execution recorded as a TaskRun, through Celery's signals.

How a run ends:
- succeeded / failed / retrying: the worker says so (task_postrun, task_failure, task_retry);
- lost: the worker died mid-execution (kill -9, OOM). With `acks_late` the message is
  still unacknowledged: a killed pool child is noticed by the worker at once and, with
  `reject_on_worker_lost`, the message is requeued; a killed worker leaves it to the
  broker, which redelivers it after the visibility timeout. The run is marked lost when
  a worker of the same name starts again (`worker_ready`), by the beat task
  `missioncontrol.sweep_task_runs` once it is older than the hard time limit, or when
  the redelivered execution starts (same task id: `deliveries` goes up).

Recording never fails a task: if the database is down, the run goes unrecorded and
that is logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery, signals

from missioncontrol.jsontext import dumps

logger = logging.getLogger(__name__)


def args_digest(args: Any, kwargs: Any) -> str:
    try:
        text = dumps({"args": list(args or ()), "kwargs": dict(kwargs or {})})
    except TypeError:
        text = repr((args, kwargs))
    return hashlib.sha256(text.encode()).hexdigest()


def _guarded(record: Callable[..., None]) -> Callable[..., None]:
    def run(*args: Any, **kwargs: Any) -> None:
        from django.db import DatabaseError, connections

        try:
            # A worker's connection may have broken since its last task; an eager task
            # runs inside its caller's transaction, which must be left alone.
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:
                    connection.close_if_unusable_or_obsolete()
            record(*args, **kwargs)
        except DatabaseError as exc:
            logger.warning("task runs: not recorded (%s): %s", record.__name__, exc)

    run.__name__ = record.__name__
    return run


def _hostname(task: Any) -> str:
    return str(getattr(task.request, "hostname", "") or "")


@_guarded
def started(task_id: str, task: Any, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    from django.db.models import F
    from django.db.models.functions import Now

    from missioncontrol.models import TaskRun

    digest = args_digest(args, kwargs)
    fields = {"worker": _hostname(task), "pid": os.getpid(), "retries": task.request.retries or 0}
    run, created = TaskRun.objects.get_or_create(
        task_id=task_id, defaults={"name": task.name, "args_digest": digest, **fields}
    )
    if created:
        return
    # The same message again: a retry, or a redelivery after its worker died.
    lost = run.status in (TaskRun.Status.STARTED, TaskRun.Status.LOST)
    TaskRun.objects.filter(pk=run.pk).update(
        status=TaskRun.Status.STARTED,
        deliveries=F("deliveries") + (1 if lost or run.status == TaskRun.Status.FAILED else 0),
        started_at=Now(),
        finished_at=None,
        error="an earlier execution was lost with its worker" if lost else run.error,
        **fields,
    )


@_guarded
def finished(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    from django.db.models.functions import Now

    from missioncontrol.models import TaskRun

    if state == "SUCCESS":
        TaskRun.objects.filter(task_id=task_id).update(status=TaskRun.Status.SUCCEEDED, finished_at=Now())
    elif state == "RETRY":
        TaskRun.objects.filter(task_id=task_id).update(status=TaskRun.Status.RETRYING, finished_at=Now())
    elif state is not None:
        TaskRun.objects.filter(task_id=task_id).exclude(status=TaskRun.Status.FAILED).update(
            status=TaskRun.Status.FAILED, finished_at=Now()
        )
    _count(task.name, state)


def _count(name: str, state: str | None) -> None:
    from missioncontrol.metrics import TASK_RUNS

    TASK_RUNS.labels(name, {"SUCCESS": "succeeded", "RETRY": "retrying"}.get(state or "", "failed")).inc()


@_guarded
def failed(task_id: str, exception: BaseException | None = None, sender: Any = None, **_: Any) -> None:
    from django.db.models.functions import Now

    from missioncontrol.models import TaskRun

    error = f"{type(exception).__name__}: {exception}" if exception is not None else "failed"
    TaskRun.objects.filter(task_id=task_id).update(
        status=TaskRun.Status.FAILED, finished_at=Now(), error=error[:10_000]
    )


@_guarded
def retrying(request: Any = None, reason: Any = None, **_: Any) -> None:
    from missioncontrol.models import TaskRun

    if request is not None:
        TaskRun.objects.filter(task_id=request.id).update(
            status=TaskRun.Status.RETRYING, error=str(reason)[:10_000]
        )


@_guarded
def worker_ready(sender: Any = None, **_: Any) -> None:
    """A worker (re)starting under a name: whatever that name was running is gone."""
    from missioncontrol.models import TaskRun

    hostname = str(getattr(sender, "hostname", "") or "")
    if hostname:
        lost = TaskRun.objects.filter(worker=hostname).mark_lost("the worker stopped mid-execution")
        if lost:
            logger.warning("task runs: %d run(s) of %s marked lost", lost, hostname)


def sweep(older_than: timedelta) -> int:
    """Mark lost the runs started longer ago than any run may last (the hard time limit).

    Measured on the database's clock, which stamped `started_at`."""
    from django.db.models.functions import Now

    from missioncontrol.models import TaskRun

    return TaskRun.objects.filter(started_at__lt=Now() - older_than).mark_lost(
        "still running past the hard time limit: its worker died"
    )


def connect(app: Celery) -> None:
    """Record every task of `app` (weak=False: the handlers are module functions)."""
    signals.task_prerun.connect(started, weak=False)
    signals.task_postrun.connect(finished, weak=False)
    signals.task_failure.connect(failed, weak=False)
    signals.task_retry.connect(retrying, weak=False)
    signals.worker_ready.connect(worker_ready, weak=False)
