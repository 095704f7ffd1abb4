"""Server pages: the list with status and latency, a server's page, and the Terminal."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from mcps.models import AGGREGATE_ID, HealthCheck, MCPServer
from missioncontrol.pages import visible
from threads.models import ExecutionStep, Thread

SPARK_POINTS = 30
SPARK_WINDOW = timedelta(hours=6)


def sparkline(values: list[float | None], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for `values` (gaps skipped), scaled to the largest."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    top = max(v for _, v in points) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - v / top * (height - 4):.1f}" for i, v in points)


@login_required
def server_list(request: HttpRequest) -> HttpResponse:
    servers = list(MCPServer.objects.annotate(tool_count=Count("tools")).order_by("id"))
    latencies: dict[str, list[float | None]] = defaultdict(list)
    checks = (
        HealthCheck.objects.filter(checked_at__gte=timezone.now() - SPARK_WINDOW)
        .order_by("server_id", "checked_at")
        .values_list("server_id", "latency_ms")
    )
    for server_id, latency in checks:
        latencies[server_id].append(latency)
    rows = []
    for server in servers:
        values = latencies.get(server.id, [])[-SPARK_POINTS:]
        rows.append({"server": server, "spark": sparkline(values), "last": values[-1] if values else None})
    return render(request, "mcps/list.html", {"rows": rows})


@login_required
def server_page(request: HttpRequest, mcp_id: str) -> HttpResponse:
    server = get_object_or_404(MCPServer, id=mcp_id)
    checks = list(server.health_checks.order_by("-checked_at")[:100])
    # The threads filed under it: those that ran on it, and every call routed to it.
    threads = list(visible(request, Thread.objects.filter(mcp_id=server.id)).order_by("-started_at")[:20])
    calls = ExecutionStep.objects.calls([t.id for t in threads])[:20]
    context = {
        "server": server,
        "checks": checks,
        "spark": sparkline([c.latency_ms for c in reversed(checks)], width=480, height=60),
        "tools": server.tools.order_by("name"),
        "resources": server.resources.order_by("name"),
        "prompts": server.prompts.order_by("name"),
        "threads": threads,
        "calls": calls,
        "callable": server.managed or server.id == AGGREGATE_ID,
        "connection": server.connection_for(request.user),
    }
    return render(request, "mcps/detail.html", context)


@login_required
def terminal(request: HttpRequest, mcp_id: str) -> HttpResponse:
    """Call a server's tools from a form made from each tool's input schema, or raw JSON-RPC."""
    server = get_object_or_404(MCPServer, id=mcp_id)
    tools = [
        {"name": t.name, "title": t.title, "description": t.description, "input_schema": t.input_schema}
        for t in server.tools.order_by("name")
    ]
    context = {
        "server": server,
        "tools": tools,
        "selected": request.GET.get("tool", ""),
        "servers": MCPServer.objects.managed().order_by("id").values_list("id", flat=True),
    }
    return render(request, "mcps/terminal.html", context)
