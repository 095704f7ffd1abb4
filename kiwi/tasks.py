"""Celery task of the Kiwi index: a thin wrapper over KiwiWorkspace.index."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from kiwi.models import KiwiWorkspace


@shared_task(name="kiwi.index", expires=55)
def index() -> dict[str, str]:
    """Re-index every Kiwi workspace (only changed files are read); a summary per workspace."""
    KiwiWorkspace.objects.configure(settings.MC.kiwi)
    return {name: str(report) for name, report in KiwiWorkspace.objects.index_all().items()}
