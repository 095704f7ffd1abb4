"""ASGI entry point: HTTP (Django, static files, the bare ingest and /mcp endpoints) and /ws/."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")
# Build Django before importing consumers: they import models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.exceptions import SuspiciousOperation  # noqa: E402
from django.http import Http404, HttpRequest, HttpResponse  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from mcps.endpoint.http import mcp_endpoint  # noqa: E402
from mcps.gateway import embedded  # noqa: E402
from missioncontrol.ingest import drainer  # noqa: E402
from missioncontrol.ingest.edge import ingest_endpoint  # noqa: E402
from missioncontrol.ingest.otlp.edge import SIGNALS as OTLP_PATHS  # noqa: E402
from missioncontrol.ingest.otlp.edge import otlp_endpoint  # noqa: E402
from missioncontrol.metrics import count_replacement  # noqa: E402
from missioncontrol.origins import OriginValidator  # noqa: E402
from missioncontrol.routing import websocket_urlpatterns  # noqa: E402
from missioncontrol.runtime import tune_for_latency  # noqa: E402

logger = logging.getLogger(__name__)
get_resolver().url_patterns  # noqa: B018 (imports every view now, not on the first request)
tune_for_latency()
count_replacement()
INGEST_PATH = "/api/ingest/events"
MCP_PATHS = ("/mcp", "/mcp/")


class StaticFiles(ASGIStaticFilesHandler):
    """Static files; a path that climbs out of them (`/static/../settings.py`) is a 404, not a 500."""

    def serve(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().serve(request)
        except SuspiciousOperation:
            raise Http404("No such static file.") from None


django_http = StaticFiles(django_asgi_app)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Ingest batches and OTLP exports bypass Django's request cycle (see ingest.edge); the rest is Django."""
    embedded.start()
    drainer.start()
    if scope["path"] == INGEST_PATH:
        await ingest_endpoint(scope, receive, send)
    elif scope["path"].rstrip("/") in OTLP_PATHS:
        await otlp_endpoint(scope, receive, send)
    elif scope["path"] in MCP_PATHS:
        await mcp_endpoint(scope, receive, send)
    else:
        await django_http(scope, receive, send)


# The session cookie signs a browser in; `?token=` or `Authorization: Bearer` (read by the
# consumer) signs in scripts.
websocket = OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


async def websocket_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    embedded.start()
    await websocket(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": websocket_app})

if (
    settings.GATEWAY_EMBEDDED or settings.SCHEDULE_IN_PROCESS or settings.GATEWAY_MONITOR
) and "twisted.internet.reactor" in sys.modules:
    # Under daphne (whose reactor is installed before the app is imported), connect to
    # the servers (or watch the gateway's heartbeat) as soon as the reactor runs;
    # elsewhere the first request starts it.
    # Startup triggers fire before the asyncio loop runs: start on its first turn.
    from twisted.internet import reactor

    reactor.callWhenRunning(reactor.callLater, 0, embedded.start)  # type: ignore[attr-defined]

if "twisted.internet.reactor" in sys.modules:
    # Daphne sends no lifespan events: on SIGTERM, end /mcp's sessions and store the
    # calls still waiting to be recorded before the process exits.
    import asyncio

    from twisted.internet import defer, reactor

    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before",
        "shutdown",
        lambda: defer.Deferred.fromFuture(asyncio.ensure_future(mcp_endpoint.shutdown())),
    )
