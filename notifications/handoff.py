"""Handing notification work to Celery without holding whoever published the alert.

With Redis, a task goes to the broker (a worker sends). On the embedded default Celery
is eager, which would send right where it is called: on the ingest path, or on the
event loop of the web process. There the task goes to a worker thread of the process's
event loop instead (as automations.engine.dispatch does with directive runs), after its
countdown, so a retry still waits its backoff. With no such loop (tests, commands) it
runs right here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from celery import Task
from django.conf import settings
from django.db import close_old_connections

from mcps.gateway import embedded

logger = logging.getLogger(__name__)
_running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def hand_off(task: Task, args: list[Any], countdown: float = 0) -> None:
    """Run `task(*args)` elsewhere, `countdown` seconds from now."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args=args, countdown=countdown or None)
        return
    loop = embedded.loop()
    if loop is None:
        task.apply(args=args)
        return
    later(loop, countdown, lambda: task.apply(args=args))


def later(loop: asyncio.AbstractEventLoop, delay: float, work: Callable[[], Any]) -> None:
    """Run the blocking `work` on a worker thread of `loop`, `delay` seconds from now."""

    def run() -> None:
        close_old_connections()
        try:
            work()
        except Exception:
            logger.exception("notifications: a task handed to a worker thread failed")
        finally:
            close_old_connections()

    def start() -> None:
        task = loop.create_task(sync_to_async(run, thread_sensitive=False)())
        _running.add(task)
        task.add_done_callback(_running.discard)

    loop.call_soon_threadsafe(lambda: loop.call_later(max(0.0, delay), start))
