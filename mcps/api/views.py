"""REST for MCP servers: list, register, detail, catalog, health, reconnect, tool calls.

Reads come from the database (the gateway keeps it current). Reconnect and tool calls
are requests to the gateway (see gateway/rpc.py); they are async views so a long tool
call holds no thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import access
from mcps.api.serializers import (
    HealthCheckSerializer,
    HealthReportSerializer,
    MCPServerDetailSerializer,
    MCPServerSerializer,
    ServerRegistrationSerializer,
    ServerUsageSerializer,
    ToolSerializer,
)
from mcps.endpoint.gate import POLICY_META_KEY, denial_meta, open_call
from mcps.endpoint.http import mcp_endpoint
from mcps.gateway import rpc
from mcps.models import DEFAULT_USAGE_WINDOW, USAGE_WINDOWS, MCPServer
from mcps.registration import register
from missioncontrol import roles
from missioncontrol.authentication import api_access
from missioncontrol.jsontext import JSONDecodeError, dumps, loads
from missioncontrol.openapi import NOT_FOUND, error
from threads.models import ExecutionStep


def servers() -> Any:
    return MCPServer.objects.annotate(tool_count=Count("tools"))


ALLOW_POST = {"Allow": "POST"}  # a 405 names the methods that would do (RFC 9110)


class ServerList(APIView):
    @extend_schema(responses=MCPServerSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(MCPServerSerializer(servers(), many=True).data)

    @extend_schema(
        request=ServerRegistrationSerializer,
        responses={
            200: OpenApiResponse(MCPServerDetailSerializer, description="Updated, or unchanged."),
            201: OpenApiResponse(MCPServerDetailSerializer, description="Registered."),
            400: error("The entry is not usable: the offending key and why."),
        },
    )
    def post(self, request: Request) -> Response:
        """Register a server: {"id": "time", "command": "uvx", "args": [...]} or {"id", "url"}."""
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            return _error(400, "body", "expected a JSON object")
        name = data.get("id") or data.get("name")
        if not isinstance(name, str) or not name:
            return _error(400, "id", "required, the server's slug")
        entry = {k: v for k, v in data.items() if k != "id"}
        result = register(name, entry, MCPServer.Source.API)
        if result.errors:
            field, _, reason = result.errors[name].partition(": ")
            return _error(400, field, reason)
        slug = (result.created or result.updated or result.unchanged)[0]
        if result.created or result.updated:
            async_to_sync(rpc.notify)("discover", {})  # connect now, not at the next interval
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        detail = MCPServerDetailSerializer(servers().get(id=slug), context={"request": request})
        return Response(detail.data, status=code)


class ServerDetail(APIView):
    @extend_schema(responses={200: MCPServerDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, mcp_id: str) -> Response:
        server = get_object_or_404(servers(), id=mcp_id)
        return Response(MCPServerDetailSerializer(server, context={"request": request}).data)


class ServerTools(APIView):
    @extend_schema(responses={200: ToolSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, mcp_id: str) -> Response:
        server = get_object_or_404(MCPServer, id=mcp_id)
        return Response(ToolSerializer(server.tools.order_by("name"), many=True).data)


class ServerHealth(APIView):
    @extend_schema(responses={200: HealthReportSerializer, 404: NOT_FOUND})
    def get(self, request: Request, mcp_id: str) -> Response:
        server = get_object_or_404(MCPServer, id=mcp_id)
        checks = server.health_checks.order_by("-checked_at")[:50]
        return Response(
            {
                "mcp_id": server.id,
                "status": server.status,
                "last_error": server.last_error,
                "checks": HealthCheckSerializer(checks, many=True).data,
            }
        )


class ServerStats(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "window",
                str,
                enum=list(USAGE_WINDOWS),
                default=DEFAULT_USAGE_WINDOW,
                description="How far back.",
            )
        ],
        responses={200: ServerUsageSerializer, 400: error("An unknown window."), 404: NOT_FOUND},
    )
    def get(self, request: Request, mcp_id: str) -> Response:
        """Per tool: calls, failures, p50/p95 latency and last error; calls and errors over time."""
        server = get_object_or_404(MCPServer, id=mcp_id)
        window = request.query_params.get("window", DEFAULT_USAGE_WINDOW)
        if window not in USAGE_WINDOWS:
            return _error(400, "window", f"expected one of {', '.join(USAGE_WINDOWS)}")
        return Response(server.usage(ExecutionStep.objects.visible_to(request.user), window))


def _error(code: int, field: str | None, reason: str) -> Any:
    return Response({"error": {"field": field, "reason": reason}}, status=code)


def _json_error(exc: rpc.GatewayError, **extra: Any) -> JsonResponse:
    """The gateway's answer as an HTTP error. A 503 was never sent (retry it); a call whose
    outcome is unknown (502, or a 504 timeout) says `"outcome": "unknown"`: it may have run."""
    body: dict[str, Any] = {"error": {"field": exc.field, "reason": exc.reason}}
    if exc.outcome is not None:
        body["outcome"] = exc.outcome
    response = JsonResponse({**body, **extra}, status=exc.status)
    if exc.status == 503:
        response["Retry-After"] = "5"
    return response


async def _exists(mcp_id: str) -> bool:
    return await MCPServer.objects.filter(id=mcp_id).aexists()


@csrf_exempt
@api_access(roles.RECONNECT)
async def reconnect(request: HttpRequest, mcp_id: str) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse(
            {"error": {"field": "method", "reason": "use POST"}}, status=405, headers=ALLOW_POST
        )
    if not await _exists(mcp_id):
        return JsonResponse({"error": {"field": "mcp_id", "reason": f"no server {mcp_id!r}"}}, status=404)
    try:
        answer = JsonResponse(await rpc.request("reconnect", {"mcp_id": mcp_id}, timeout=10), status=202)
    except rpc.GatewayError as exc:
        answer = _json_error(exc)
    await _audit(request, access.RECONNECT, f"mcp:{mcp_id}", answer.status_code, {"mcp_id": mcp_id})
    return answer


async def _audit(request: HttpRequest, action: str, target: str, code: int, details: dict[str, Any]) -> None:
    outcome = access.SUCCESS if code < 400 else access.FAILURE
    await access.arecord(
        request.user,
        action,
        target,
        outcome=outcome,
        details={**details, "via": "rest", "status": code},
        request=request,
    )


@csrf_exempt
@api_access(roles.CALL_TOOL)
async def call_tool(request: HttpRequest, mcp_id: str, tool: str) -> HttpResponse:
    """POST {"arguments": {...}, "timeout": 30, "parent_thread_id": "T-1"}.

    `?stream=1` answers NDJSON: a line per progress or log notification, then the result.
    The call passes the policy check first (mcps/endpoint/gate.py) and is recorded as a
    thread of its own (a child of `parent_thread_id` if given); 403 when denied.
    """
    if request.method != "POST":
        return JsonResponse(
            {"error": {"field": "method", "reason": "use POST"}}, status=405, headers=ALLOW_POST
        )
    try:
        body = loads(request.body or b"{}")
    except JSONDecodeError as exc:
        return JsonResponse({"error": {"field": "body", "reason": f"not valid JSON: {exc}"}}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": {"field": "body", "reason": "expected a JSON object"}}, status=400)
    arguments = body.get("arguments", {})
    if not isinstance(arguments, dict):
        return JsonResponse({"error": {"field": "arguments", "reason": "expected an object"}}, status=400)
    timeout = body.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        return JsonResponse({"error": {"field": "timeout", "reason": "expected seconds > 0"}}, status=400)
    parent = body.get("parent_thread_id")
    if parent is not None and (not isinstance(parent, str) or not parent or len(parent) > 200):
        return JsonResponse(
            {"error": {"field": "parent_thread_id", "reason": "expected a thread id"}}, status=400
        )
    if not await _exists(mcp_id):
        return JsonResponse({"error": {"field": "mcp_id", "reason": f"no server {mcp_id!r}"}}, status=404)

    call = await open_call(
        mcp_endpoint.recorder, request.user, mcp_id, tool, arguments, via="REST", parent=parent
    )
    decision, record = call.decision, call.record
    if not decision.granted:
        record(error=decision.denial_text())
        await _audit(request, access.TOOL_CALL, f"{mcp_id}/{tool}", 403, {"mcp_id": mcp_id, "tool": tool})
        return JsonResponse(
            {
                "error": {"field": "policy", "reason": decision.denial_text()},
                "thread_id": call.thread_id,
                "policy": denial_meta(decision, call.thread_id)[POLICY_META_KEY],
            },
            status=403,
        )
    args = {"mcp_id": mcp_id, "tool": tool, "arguments": arguments, "timeout": timeout}
    wait = float(timeout or 60)
    details = {"mcp_id": mcp_id, "tool": tool}
    if request.GET.get("stream") not in ("1", "true"):
        try:
            answer = await rpc.request("call_tool", args, timeout=wait)
        except rpc.GatewayError as exc:
            record(error=exc.reason, outcome=exc.outcome)
            failed = _json_error(exc, thread_id=call.thread_id)
            await _audit(request, access.TOOL_CALL, f"{mcp_id}/{tool}", failed.status_code, details)
            return failed
        record(result=answer["result"])
        await _audit(request, access.TOOL_CALL, f"{mcp_id}/{tool}", 200, details)
        return JsonResponse({**answer, "thread_id": call.thread_id})
    # Streamed: recorded as it starts (its outcome is in the stream and the thread).
    await _audit(request, access.TOOL_CALL, f"{mcp_id}/{tool}", 200, {**details, "stream": True})
    return StreamingHttpResponse(
        _stream_call(args, wait, call.thread_id, record), content_type="application/x-ndjson"
    )


async def _stream_call(
    args: dict[str, Any], wait: float, thread_id: str, record: Callable[..., None]
) -> AsyncIterator[str]:
    import asyncio

    lines: asyncio.Queue[str | None] = asyncio.Queue()

    async def progress(payload: dict[str, Any]) -> None:
        await lines.put(dumps({"type": "progress", **payload}) + "\n")

    async def log(payload: dict[str, Any]) -> None:
        await lines.put(dumps({"type": "log", **payload}) + "\n")

    async def run() -> None:
        try:
            result = await rpc.request("call_tool", args, timeout=wait, on_progress=progress, on_log=log)
            record(result=result["result"])
            await lines.put(dumps({"type": "result", **result, "thread_id": thread_id}) + "\n")
        except rpc.GatewayError as exc:
            record(error=exc.reason, outcome=exc.outcome)
            await lines.put(dumps({"type": "error", **exc.as_payload(), "thread_id": thread_id}) + "\n")
        finally:
            await lines.put(None)

    task = asyncio.get_running_loop().create_task(run())
    try:
        while (line := await lines.get()) is not None:
            yield line
    finally:
        task.cancel()
