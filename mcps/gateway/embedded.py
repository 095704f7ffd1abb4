"""The gateway inside the web process, on the embedded default (no Redis).

It lives on the web process's event loop; callers in that process reach it directly
(`running()`), everyone else over the channel layer (rpc.py).
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from mcps.gateway.service import Gateway

logger = logging.getLogger(__name__)

_gateway: Gateway | None = None


def start() -> None:
    """Start the embedded gateway once, on the running loop, when configured to."""
    global _gateway
    if _gateway is not None or not settings.GATEWAY_EMBEDDED:
        return
    loop = asyncio.get_running_loop()  # before claiming the slot: no loop, no gateway
    _gateway = Gateway()
    loop.create_task(_gateway.start()).add_done_callback(_report_start)


def running() -> Gateway | None:
    """The gateway in this process, if there is one."""
    return _gateway


def _report_start(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the embedded MCP gateway failed to start", exc_info=task.exception())
