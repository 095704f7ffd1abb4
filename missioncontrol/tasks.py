"""Cross-cutting periodic work (Celery tasks, thin over the domain modules)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from celery import shared_task
from django.conf import settings

from missioncontrol import taskruns
from missioncontrol.ingest.spool import drain_default
from missioncontrol.metrics import SPOOL_REPLAYED


@shared_task(name="missioncontrol.drain_spool")
def drain_spool() -> dict[str, Any]:
    """Replay spooled ingest batches once the database answers (idempotent: event ids dedupe)."""
    report = drain_default()
    SPOOL_REPLAYED.inc(report.events)
    for outbox in report.outboxes:
        async_to_sync(outbox.send)()
    return {
        "files": report.files,
        "events": report.events,
        "remaining": report.remaining,
        "error": report.error,
    }


@shared_task(name="missioncontrol.sweep_task_runs")
def sweep_task_runs() -> int:
    """Mark lost the runs whose worker died: started longer ago than the hard time limit allows."""
    return taskruns.sweep(timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60))
