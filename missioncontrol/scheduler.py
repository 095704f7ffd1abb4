"""The beat schedule, run inside the web process when there is no Redis (no Celery beat).

Each entry of `CELERY_BEAT_SCHEDULE` with an interval (seconds or a timedelta) runs its
Celery task every interval on a worker thread, one run at a time per entry; a failed
run is logged and the next one comes on schedule. With Redis, `celery beat` and a
worker do this instead and this scheduler does not start.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)


def interval_of(entry: dict[str, Any]) -> float | None:
    schedule = entry.get("schedule")
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return float(schedule)
    return None


class InProcessScheduler:
    def __init__(self, schedule: dict[str, dict[str, Any]] | None = None) -> None:
        self.schedule = schedule if schedule is not None else settings.CELERY_BEAT_SCHEDULE
        self.tasks: list[asyncio.Task[None]] = []
        self.runs: dict[str, int] = {}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name, entry in self.schedule.items():
            interval = interval_of(entry)
            if interval is None or interval <= 0:
                logger.warning("scheduler: %s has no interval schedule; only celery beat runs it", name)
                continue
            self.tasks.append(loop.create_task(self._every(name, entry["task"], interval)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _every(self, name: str, task_name: str, interval: float) -> None:
        from missioncontrol.celery import app

        while True:
            await asyncio.sleep(interval)
            task = app.tasks.get(task_name)
            if task is None:
                logger.error("scheduler: %s: no task named %s", name, task_name)
                continue
            try:
                # A thread, so the task's own async_to_sync hops back onto this loop.
                await sync_to_async(task.apply, thread_sensitive=False)(throw=True)
            except Exception:
                logger.exception("scheduler: %s failed", name)
            self.runs[name] = self.runs.get(name, 0) + 1
