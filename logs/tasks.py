"""Log retention and the log table's day partitions as Celery tasks (beat)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from logs import archive, partitions


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


@shared_task(name="logs.partitions")
def ensure_partitions() -> list[str]:
    """PostgreSQL: the day partitions from two days ago to a week ahead (idempotent; no-op on SQLite)."""
    return [day.isoformat() for day in partitions.ensure_ahead()]
