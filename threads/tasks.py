"""Celery task of the OTLP span export: a thin wrapper over threads.otlp_export."""

from __future__ import annotations

from celery import shared_task

from threads import otlp_export


@shared_task(name="threads.export_spans")
def export_spans() -> int:
    """Send the threads that ended since the last run to the OTLP collector; how many."""
    return otlp_export.export_due()
