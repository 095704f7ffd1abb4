"""The web process's spool drainer: replays its spooled batches once the database is back.

One loop per process, started with the first request (like the embedded gateway). Every
`SPOOL_DRAIN_INTERVAL` seconds, if the spool has files, it drains them in an executor
thread and publishes their events to the live channels. Other processes' drainers (the
beat task, `manage.py drain_spool`) may work on the same directory: files are claimed
with flock, so no batch is replayed by two at once.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from missioncontrol.ingest.spool import DrainReport, default_spool, drain_default
from missioncontrol.metrics import SPOOL_REPLAYED

logger = logging.getLogger(__name__)

_task: asyncio.Task[None] | None = None


async def drain_once() -> DrainReport:
    """Drain the spool now and publish what was stored."""
    report = await sync_to_async(drain_default, thread_sensitive=False)()
    SPOOL_REPLAYED.inc(report.events)
    for outbox in report.outboxes:
        await outbox.send()
    if report.files:
        logger.info(
            "spool: replayed %d batch(es), %d event(s); %d left",
            report.files,
            report.events,
            report.remaining,
        )
    return report


async def _loop(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        if not default_spool().files():
            continue
        try:
            await drain_once()
        except Exception:
            logger.exception("spool: draining failed; will retry")


def start() -> None:
    """Start this process's drainer once, on the running loop, if configured."""
    global _task
    if not settings.SPOOL_DRAIN_IN_PROCESS or settings.SPOOL_DRAIN_INTERVAL <= 0:
        return
    loop = asyncio.get_running_loop()
    if _task is not None and not _task.done() and _task.get_loop() is loop:
        return
    _task = loop.create_task(_loop(settings.SPOOL_DRAIN_INTERVAL))


async def stop() -> None:
    global _task
    task, _task = _task, None
    if task is not None and task.get_loop() is asyncio.get_running_loop():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
