"""ASGI entry point: HTTP (Django, static files, the bare ingest endpoint) and /ws/."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")
# Build Django before importing consumers: they import models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from missioncontrol.ingest.edge import ingest_endpoint  # noqa: E402
from missioncontrol.routing import websocket_urlpatterns  # noqa: E402

logger = logging.getLogger(__name__)
INGEST_PATH = "/api/ingest/events"
django_http = ASGIStaticFilesHandler(django_asgi_app)


_embedded_gateway: Any = None


def start_embedded_gateway() -> None:
    """On the embedded default the gateway lives in this process, on its event loop."""
    global _embedded_gateway
    if _embedded_gateway is not None or not settings.GATEWAY_EMBEDDED:
        return
    from mcps.gateway.service import Gateway

    loop = asyncio.get_running_loop()  # before claiming the slot: no loop, no gateway
    _embedded_gateway = Gateway()
    task = loop.create_task(_embedded_gateway.start())
    task.add_done_callback(_report_gateway_start)


def _report_gateway_start(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the embedded MCP gateway failed to start", exc_info=task.exception())


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Ingest batches bypass Django's request cycle (see ingest.edge); the rest is Django."""
    start_embedded_gateway()
    if scope["path"] == INGEST_PATH:
        await ingest_endpoint(scope, receive, send)
    else:
        await django_http(scope, receive, send)


websocket = URLRouter(websocket_urlpatterns)


async def websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    start_embedded_gateway()
    await websocket(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": websocket_app})

if settings.GATEWAY_EMBEDDED and "twisted.internet.reactor" in sys.modules:
    # Under daphne (whose reactor is installed before the app is imported), connect to
    # the servers as soon as the reactor runs; elsewhere the first request starts it.
    # Startup triggers fire before the asyncio loop runs: start on its first turn.
    from twisted.internet import reactor

    reactor.callWhenRunning(reactor.callLater, 0, start_embedded_gateway)  # type: ignore[attr-defined]
