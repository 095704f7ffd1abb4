"""The beat schedule, run inside the web process when there is no Redis (no Celery beat).

Every entry of `CELERY_BEAT_SCHEDULE` runs here exactly as `celery beat` would send it:
its schedule is Celery's own (`celery.schedules.schedule` for an interval in seconds or a
timedelta, `crontab` for wall-clock minutes), asked with `is_due()` when the entry runs
next, so an interval entry first runs one interval after start (as beat's does) and a
crontab entry runs at its minute. Each run applies the registered Celery task on a
worker thread, one run at a time per entry; a failed run is logged and the next one
comes on schedule. With Redis, `celery beat` and a worker do this instead and this
scheduler does not start.

Tasks are registered by their apps' `ready()` (every process kind imports them) on the
project's Celery app (the current one), so an entry naming no registered task is a
start-up error (`missioncontrol.checks`), never a line logged every interval.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from celery import Task, current_app
from celery.schedules import BaseSchedule, schedule
from django.conf import settings

logger = logging.getLogger(__name__)


def schedule_of(entry: dict[str, Any]) -> BaseSchedule:
    """The entry's schedule as Celery beat reads it (a number of seconds is an interval)."""
    value = entry["schedule"]
    if isinstance(value, BaseSchedule):
        found = value
    elif isinstance(value, timedelta) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        found = schedule(run_every=value)
    else:
        raise TypeError(f"a beat schedule is seconds, a timedelta or a celery schedule, not {value!r}")
    found.app = current_app._get_current_object()  # its clock (app.now) and time zone
    return found


def unknown_tasks(beat_schedule: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Entries (name: task) whose task no app has registered."""
    return {
        name: entry["task"] for name, entry in beat_schedule.items() if entry["task"] not in current_app.tasks
    }


class InProcessScheduler:
    def __init__(self, beat_schedule: dict[str, dict[str, Any]] | None = None) -> None:
        self.schedule = beat_schedule if beat_schedule is not None else settings.CELERY_BEAT_SCHEDULE
        self.tasks: list[asyncio.Task[None]] = []
        self.runs: dict[str, int] = {}

    def start(self) -> None:
        missing = unknown_tasks(self.schedule)
        loop = asyncio.get_running_loop()
        for name, entry in self.schedule.items():
            if name in missing:  # `manage.py check` (and so `serve`) refuses this at start-up
                logger.error("scheduler: %s: no task named %s; it will not run", name, missing[name])
                continue
            every = schedule_of(entry)
            self.tasks.append(loop.create_task(self._run(name, current_app.tasks[entry["task"]], every)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _run(self, name: str, task: Task, every: BaseSchedule) -> None:
        last_run_at = every.now()  # as beat starts an entry it has no record of
        while True:
            due, wait = every.is_due(last_run_at)
            if not due:
                await asyncio.sleep(wait)
                continue
            last_run_at = every.now()
            try:
                # A thread, so the task's own async_to_sync hops back onto this loop.
                await sync_to_async(task.apply, thread_sensitive=False)(throw=True)
            except Exception:
                logger.exception("scheduler: %s failed", name)
            self.runs[name] = self.runs.get(name, 0) + 1
