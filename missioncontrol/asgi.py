"""ASGI entry point: HTTP (Django, static files, the bare ingest endpoint) and /ws/."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "missioncontrol.settings")
# Build Django before importing consumers: they import models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from missioncontrol.ingest.edge import ingest_endpoint  # noqa: E402
from missioncontrol.routing import websocket_urlpatterns  # noqa: E402

INGEST_PATH = "/api/ingest/events"
django_http = ASGIStaticFilesHandler(django_asgi_app)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Ingest batches bypass Django's request cycle (see ingest.edge); the rest is Django."""
    if scope["path"] == INGEST_PATH:
        await ingest_endpoint(scope, receive, send)
    else:
        await django_http(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
