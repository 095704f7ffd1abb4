"""The gateway and the beat schedule inside the web process, on the embedded default.

Without Redis there is no run_gateway and no celery beat: both live on the web
process's event loop. Callers in that process reach the gateway directly
(`running()`), everyone else over the channel layer (rpc.py).
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from mcps.gateway import monitor
from mcps.gateway.service import Gateway
from missioncontrol.scheduler import InProcessScheduler

logger = logging.getLogger(__name__)

_gateway: Gateway | None = None
_scheduler: InProcessScheduler | None = None
_loop: asyncio.AbstractEventLoop | None = None


def start() -> None:
    """Start the embedded gateway and scheduler once, on the running loop, as configured."""
    global _gateway, _scheduler, _loop
    if _loop is None and (settings.GATEWAY_EMBEDDED or settings.SCHEDULE_IN_PROCESS):
        _loop = asyncio.get_running_loop()
    if _gateway is None and settings.GATEWAY_EMBEDDED:
        loop = asyncio.get_running_loop()  # before claiming the slot: no loop, no gateway
        _gateway = Gateway()
        loop.create_task(_gateway.start()).add_done_callback(_report_start)
    if _scheduler is None and settings.SCHEDULE_IN_PROCESS:
        _scheduler = InProcessScheduler()
        _scheduler.start()
    if settings.GATEWAY_MONITOR and not settings.GATEWAY_EMBEDDED:
        monitor.start()  # once: the gateway is a process of its own, watched by its heartbeat


def loop() -> asyncio.AbstractEventLoop | None:
    """The web process's event loop once start() ran: where in-process work is handed to."""
    return _loop if _loop is not None and _loop.is_running() else None


def running() -> Gateway | None:
    """The gateway in this process, if there is one."""
    return _gateway


def _report_start(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the embedded MCP gateway failed to start", exc_info=task.exception())
