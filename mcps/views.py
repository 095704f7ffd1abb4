"""Server pages: the list with status and latency, a server's page, the Terminal, and
adding, testing, editing, disabling and removing servers (for those who manage them)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from mcps.forms import ImportForm, ServerForm
from mcps.gateway import rpc
from mcps.models import AGGREGATE_ID, DEFAULT_USAGE_WINDOW, USAGE_WINDOWS, HealthCheck, MCPServer
from missioncontrol import roles
from missioncontrol.pages import visible
from threads.models import ExecutionStep, Session, Thread

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
    context = {"rows": rows, "can_manage": roles.can(request.user, roles.MANAGE_SERVERS)}
    return render(request, "mcps/list.html", context)


LOG_TAIL = 30


@login_required
def server_page(request: HttpRequest, mcp_id: str) -> HttpResponse:
    """Is it healthy and how is it used: status and probes, per tool usage over a window,
    calls and errors over time, its threads and sessions, its latest log lines."""
    from logs.models import LogEntry

    server = get_object_or_404(MCPServer, id=mcp_id)
    window = request.GET.get("window", DEFAULT_USAGE_WINDOW)
    if window not in USAGE_WINDOWS:
        window = DEFAULT_USAGE_WINDOW
    checks = list(server.health_checks.order_by("-checked_at")[:100])
    # The threads filed under it: those that ran on it, and every call routed to it.
    threads_here = visible(request, Thread.objects.filter(mcp_id=server.id))
    threads = list(threads_here.order_by("-started_at")[:20])
    calls = ExecutionStep.objects.calls([t.id for t in threads])[:20]
    usage = server.usage(visible(request, ExecutionStep.objects.all()), window)
    tools = list(server.tools.order_by("name"))
    sessions = (
        visible(request, Session.objects.with_counts(threads_here))
        .filter(id__in=threads_here.filter(session__isnull=False).values("session_id"))
        .order_by("-last_seen_at")[:20]
    )
    logs = visible(request, LogEntry.objects.filter(mcp_id=server.id)).order_by("-timestamp")[:LOG_TAIL]
    context = {
        "server": server,
        "checks": checks,
        "spark": sparkline([c.latency_ms for c in reversed(checks)], width=480, height=60),
        "tools": tools,
        "tool_usage": tool_usage_rows(usage["tools"], [t.name for t in tools]),
        "usage": usage,
        "windows": list(USAGE_WINDOWS),
        "window": window,
        "resources": server.resources.order_by("name"),
        "prompts": server.prompts.order_by("name"),
        "threads": threads,
        "sessions": list(sessions),
        "calls": calls,
        "logs": list(logs),
        "callable": server.managed or server.id == AGGREGATE_ID,
        "connection": server.connection_for(request.user),
        "can_manage": roles.can(request.user, roles.MANAGE_SERVERS) and server.id != AGGREGATE_ID,
        "can_reconnect": roles.can(request.user, roles.RECONNECT),
    }
    return render(request, "mcps/detail.html", context)


def tool_usage_rows(stats: list[dict[str, Any]], catalog: list[str]) -> list[dict[str, Any]]:
    """The usage of each tool called in the window, then the catalog's tools not called."""
    called = {row["tool"] for row in stats}
    return [*stats, *({"tool": name, "calls": 0, "failures": 0} for name in catalog if name not in called)]


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


# -- managing servers -----------------------------------------------------------------------

# How long the page waits for a test connection (the gateway stops trying at its own limit).
TEST_WAIT = 40.0


def _managing(request: HttpRequest) -> None:
    """Only those the REST API lets register servers may add, change or remove them here."""
    if not roles.can(request.user, roles.MANAGE_SERVERS):
        raise PermissionDenied("Your role does not allow managing servers.")


def _managed_server(mcp_id: str) -> MCPServer:
    server = get_object_or_404(MCPServer, id=mcp_id)
    if server.id == AGGREGATE_ID:
        raise PermissionDenied("Mission Control's own endpoint is not a server to edit.")
    return server


def _gateway_rereads() -> None:
    """Have the gateway hold the servers as they now are (it would at its next discovery)."""
    async_to_sync(rpc.notify)("discover", {})


@login_required
def server_new(request: HttpRequest) -> HttpResponse:
    _managing(request)
    form = ServerForm(request.POST or None)
    imported = ImportForm()
    if request.method == "POST" and form.is_valid():
        result = form.save(MCPServer.Source.UI)
        if result.created:
            _gateway_rereads()
            return redirect("server-detail", result.created[0])
    return render(request, "mcps/form.html", {"form": form, "import_form": imported, "server": None})


@login_required
def server_edit(request: HttpRequest, mcp_id: str) -> HttpResponse:
    _managing(request)
    server = _managed_server(mcp_id)
    form = ServerForm(request.POST or None, server=server)
    if request.method == "POST" and form.is_valid():
        result = form.save(server.source or MCPServer.Source.UI)
        if not result.errors:
            if result.updated:
                _gateway_rereads()
            return redirect("server-detail", server.id)
    return render(request, "mcps/form.html", {"form": form, "server": server})


@login_required
@require_POST
def server_test(request: HttpRequest, mcp_id: str | None = None) -> HttpResponse:
    """Connect once with what the form says (saved or not) and show what the server offers,
    or why it could not be reached, in words (a fragment the form's htmx puts in place)."""
    _managing(request)
    server = _managed_server(mcp_id) if mcp_id is not None else None
    form = ServerForm(request.POST, server=server)
    if server is None:  # testing before saving: an id already taken is no reason not to
        form.fields["id"].required = False
    context: dict[str, Any] = {"form": form}
    if not form.is_valid() and not _only_the_id_is_wrong(form):
        context["invalid"] = True
    else:
        args = {"mcp_id": form.cleaned_data.get("id") or "test", "spec": form.connection_spec()}
        try:
            context["answer"] = async_to_sync(rpc.request)("test_connection", args, timeout=TEST_WAIT)
        except rpc.GatewayError as exc:
            context["gateway_error"] = exc.reason
    return render(request, "mcps/_test_result.html", context)


def _only_the_id_is_wrong(form: ServerForm) -> bool:
    return set(form.errors) == {"id"} and bool(form.entry)


@login_required
def server_import(request: HttpRequest) -> HttpResponse:
    _managing(request)
    form = ImportForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        result = form.save()
        if result.created or result.updated:
            _gateway_rereads()
    context = {"form": ServerForm(), "import_form": form, "server": None, "imported": result}
    return render(request, "mcps/form.html", context)


@login_required
@require_POST
def server_enable(request: HttpRequest, mcp_id: str) -> HttpResponse:
    """Enable or disable a server (`enabled` = "true" or "false"): a disabled one is let go."""
    _managing(request)
    server = _managed_server(mcp_id)
    enabled = request.POST.get("enabled") == "true"
    if server.enabled != enabled:
        MCPServer.objects.filter(id=server.id).update(enabled=enabled)
        _gateway_rereads()
    return redirect("server-detail", server.id)


@login_required
def server_delete(request: HttpRequest, mcp_id: str) -> HttpResponse:
    """Ask, then remove a server: its catalog and health checks go; its threads and logs stay."""
    _managing(request)
    server = _managed_server(mcp_id)
    if request.method != "POST":
        return render(request, "mcps/delete.html", {"server": server})
    server.delete()
    MCPServer.objects.forget_registered()
    _gateway_rereads()
    return redirect("server-list")
