"""Cross-cutting pages: /health and the live overview at /."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from mcps.models import MCPServer
from threads.models import Thread


def _database_state() -> dict[str, Any]:
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; say which
        return {"ok": False, "vendor": connection.vendor, "error": str(exc).strip()[:200]}
    finally:
        close_old_connections()
    return {"ok": True, "vendor": connection.vendor}


async def _channel_layer_state() -> dict[str, Any]:
    layer = get_channel_layer()
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    if layer is None:
        return {"ok": False, "backend": backend, "error": "no channel layer configured"}
    try:
        # A real round trip through the layer: send to a fresh channel and read it back.
        channel = await layer.new_channel("health.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    except Exception as exc:
        return {"ok": False, "backend": backend, "error": str(exc).strip()[:200] or type(exc).__name__}
    return {"ok": message.get("token") == token, "backend": backend}


async def health(request: HttpRequest) -> JsonResponse:
    database = await sync_to_async(_database_state, thread_sensitive=False)()
    layer = await _channel_layer_state()
    ok = database["ok"] and layer["ok"]
    response = JsonResponse(
        {
            "status": "ok" if ok else "degraded",
            "mode": "embedded" if settings.EMBEDDED else "production",
            "database": database,
            "channel_layer": layer,
        },
        status=200 if ok else 503,
    )
    if not ok:
        response["Retry-After"] = "5"
    return response


def overview(request: HttpRequest) -> HttpResponse:
    """Live overview: counts, recent threads and the event stream, updated over /ws/."""
    threads = Thread.objects.visible_to(request.user)
    context = {
        "threads": threads.select_related("mcp").order_by("-started_at")[:25],
        "active_count": threads.active().count(),
        "server_count": MCPServer.objects.count(),
        "servers": MCPServer.objects.order_by("-last_seen")[:12],
    }
    return render(request, "overview.html", context)
