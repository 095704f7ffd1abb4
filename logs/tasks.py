"""Log retention as a Celery task (beat, daily)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from logs import archive


@shared_task(name="logs.archive", autoretry_for=(archive.ArchiveError,), retry_backoff=60, max_retries=3)
def archive_logs() -> dict[str, Any]:
    """Idempotent: a re-run merges into existing day files by id and deletes only what it archived."""
    report = archive.archive()
    return {
        "days": report.days,
        "rows": report.rows,
        "moved_cold": report.moved_cold,
        "expired": report.expired,
    }
