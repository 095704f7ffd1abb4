"""Celery tasks of the directive engine: thin wrappers over automations.engine and .triggers."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from automations import engine, triggers


# At least once, as Celery delivers it: acknowledged after the run, so the message of a run
# whose worker dies is delivered again (at once for a killed pool process, after the
# broker's visibility timeout for a killed worker; settings keep that above this limit).
@shared_task(
    name=engine.RUN_EXECUTION,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.DIRECTIVE_TASK_TIME_LIMIT,
    soft_time_limit=settings.DIRECTIVE_TASK_TIME_LIMIT - 30,
)
def run_execution(self: Task, execution_id: int) -> dict[str, Any] | None:
    """Run one pending execution. A repeat delivery finds it no longer pending and does
    nothing, unless it is its own message again after its worker died (engine.execute)."""
    request = self.request
    execution = engine.execute(execution_id, task_id=request.id or "", worker=request.hostname or "")
    return None if execution is None else {"id": execution.pk, "status": execution.status}


@shared_task(name="automations.tick", expires=55)
def tick() -> list[int]:
    """Every minute: start the scheduled automations that are due (once per scheduled minute),
    and fail runs whose worker died (engine.reap_lost)."""
    engine.reap_lost()
    return [execution.pk for execution in triggers.fire_due()]
