"""Celery tasks of the directive engine: thin wrappers over automations.engine and .triggers."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from automations import engine, triggers


@shared_task(name=engine.RUN_EXECUTION, acks_late=True)
def run_execution(execution_id: int) -> dict[str, Any] | None:
    """Run one pending execution; a repeat delivery finds it no longer pending and does nothing."""
    execution = engine.execute(execution_id)
    return None if execution is None else {"id": execution.pk, "status": execution.status}


@shared_task(name="automations.tick", expires=55)
def tick() -> list[int]:
    """Every minute: start the scheduled automations that are due (once per scheduled minute),
    and fail runs whose worker died (engine.reap_lost)."""
    engine.reap_lost()
    return [execution.pk for execution in triggers.fire_due()]
