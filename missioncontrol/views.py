"""Cross-cutting pages: /health, the dashboard at /, the graph, search, settings and API tokens."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audit.models import PermissionEvent
from logs.models import LogEntry
from mcps.models import MCPServer
from missioncontrol import roles, tokens
from missioncontrol import search as global_search
from missioncontrol.activity import activity, error_rate
from missioncontrol.api.auth import APITokenSerializer
from missioncontrol.authentication import metrics_refusal
from missioncontrol.graph import ENTITY_KINDS
from missioncontrol.ingest.spool import default_spool
from missioncontrol.metrics import exposition
from missioncontrol.models import APIToken, SavedView, Team, UserPreference
from missioncontrol.pages import visible
from threads.models import ExecutionStep, Thread


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


async def liveness(request: HttpRequest) -> JsonResponse:
    """Liveness (`/health/live`): this process answers. No dependency is asked: while the
    database is down the process still takes ingest into its spool, and restarting it
    would bring nothing back. Readiness, with the dependencies, is `/health`."""
    return JsonResponse({"status": "alive", "pid": os.getpid()})


async def health(request: HttpRequest) -> JsonResponse:
    """Readiness (`/health`, `/health/ready`): 200 when the database and the channel layer
    answer; 503 with Retry-After naming the one that does not."""
    database = await sync_to_async(_database_state, thread_sensitive=False)()
    layer = await _channel_layer_state()
    files, size = await sync_to_async(default_spool().depth, thread_sensitive=False)()
    ok = database["ok"] and layer["ok"]
    response = JsonResponse(
        {
            "status": "ok" if ok else "degraded",
            "mode": "embedded" if settings.EMBEDDED else "production",
            "database": database,
            "channel_layer": layer,
            # Batches accepted while the database was unreachable, waiting to be stored.
            "spool": {"files": files, "bytes": size},
        },
        status=200 if ok else 503,
    )
    if not ok:
        response["Retry-After"] = "5"
    return response


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The dashboard: live counts, recent threads, server health and activity charts."""
    threads = visible(request, Thread.objects.all())
    steps = ExecutionStep.objects.filter(thread__in=threads)
    logs = visible(request, LogEntry.objects.all())
    permissions = visible(request, PermissionEvent.objects.all())
    minutes = activity(threads, steps, logs, permissions)
    servers = list(MCPServer.objects.order_by("id"))
    statuses = Counter(s.status for s in servers)
    context = {
        "threads": threads.select_related("mcp").order_by("-started_at")[:20],
        "active_count": threads.active().count(),
        "servers": servers,
        "server_count": len(servers),
        "connected_count": statuses[MCPServer.Status.CONNECTED],
        "degraded_count": statuses[MCPServer.Status.DEGRADED] + statuses[MCPServer.Status.DISCONNECTED],
        "activity": minutes,
        "error_rate": error_rate(minutes),
    }
    return render(request, "overview.html", context)


@login_required
def graph_page(request: HttpRequest) -> HttpResponse:
    """The relationship graph, drawn by cytoscape.js from /api/graph/*."""
    return render(request, "graph.html", {"kinds": ENTITY_KINDS, "focus": request.GET.get("focus", "")})


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    """Everything matching `q`, through the same search as /api/search."""
    query = request.GET.get("q", "").strip()
    answer = global_search.search(query, global_search.KINDS, "rank", 50, request.user) if query else None
    if answer is not None:
        for hit in answer["results"]:
            hit["page"] = page_of(hit)
    return render(request, "search.html", {"search_query": query, "answer": answer})


def page_of(hit: dict[str, Any]) -> str:
    """The page that shows a search hit (the API's `url` is the REST resource)."""
    kind, key, thread = hit["kind"], str(hit["id"]), hit.get("thread_id")
    if kind == "tool":
        server, _, tool = key.partition("/")
        return f"/servers/{quote(server)}/terminal?tool={quote(tool)}"
    if kind == "directive":
        return f"/directives/{quote(key)}"
    if kind == "knowledge":
        return f"/knowledge/{quote(key)}"
    if kind == "kiwi":
        return f"/kiwi/{quote(key)}"
    if kind == "log":
        return f"/logs?threads={quote(thread)}" if thread else f"/logs?search={quote(hit['snippet'][:60])}"
    if kind == "permission":
        return f"/permissions?thread={quote(thread or '')}"
    if kind == "step":
        return f"/threads/{quote(thread or '')}#timeline"
    if kind == "message":
        return f"/threads/{quote(thread or '')}#transcript"
    return f"/threads/{quote(key)}"


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's preferences: the theme."""
    preference, _ = UserPreference.objects.get_or_create(user=request.user)
    saved = False
    if request.method == "POST":
        theme = request.POST.get("theme", "")
        if theme in UserPreference.Theme.values:
            preference.theme = theme
            preference.save(update_fields=["theme", "updated_at"])
            saved = True
    views = SavedView.objects.filter(user=request.user).order_by("name")
    return render(
        request,
        "settings.html",
        {"preference": preference, "themes": UserPreference.Theme.choices, "saved": saved, "views": views},
    )


@login_required
def token_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's API tokens; issuing one (admins) shows its secret this once."""
    can_issue = roles.can(request.user, roles.MANAGE_TOKENS)
    issued: APIToken | None = None
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if not can_issue:
            raise PermissionDenied(f"Your role does not allow this (needs {roles.MANAGE_TOKENS}).")
        # The API's checks; the owner is always the signed-in user here.
        body = APITokenSerializer(
            data={
                "name": request.POST.get("name", "").strip(),
                "team": request.POST.get("team") or None,
                "scope": request.POST.get("scope") or APIToken.Scope.ALL,
            }
        )
        if body.is_valid():
            data = body.validated_data
            issued = tokens.issue(
                request.user, data["name"], team=data.get("team"), request=request, scope=data["scope"]
            )
        else:
            errors = {k: [str(m) for m in v] for k, v in body.errors.items()}
            status = 400
    context = {
        "tokens": APIToken.objects.filter(owner=request.user)
        .select_related("team")
        .order_by("-created_at", "-id"),
        "can_issue": can_issue,
        "issued": issued,
        "errors": errors,
        "teams": Team.objects.order_by("slug") if can_issue else [],
        "scopes": APIToken.Scope.choices,
        "form": request.POST if errors else {},
    }
    response = render(request, "tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of your own tokens (an admin revokes anyone's through /api/tokens)."""
    token = get_object_or_404(APIToken, pk=pk, owner=request.user)
    tokens.revoke(request.user, token, request)
    return redirect("token-page")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of Mission Control's own metrics (missioncontrol.metrics), to a
    reader (session or bearer) or a metrics-only token: `Authorization: Bearer mct_...`."""
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
