"""The aggregated MCP server: every connected server's tools as `{server}__{tool}`.

Built on the SDK's low-level `Server` (tool schemas pass through untouched). A call is
forwarded through the router, its progress and its server's log notifications are
relayed to the caller as they arrive, and it is recorded once the answer is ready.

Errors an agent can act on:
- a name that is no connected server's tool: JSON-RPC error -32602 (Unknown tool);
- arguments that fail the tool's schema, a server that is down (the call was not sent),
  or the server's own error: a tool result with `isError` and the reason, so a model
  can correct itself;
- a call that may or may not have run (its server or the gateway was lost while it was
  in flight, or it timed out): JSON-RPC error -32603 whose data says
  `{"outcome": "unknown", "status": 502 or 504, "mc/thread_id": ...}`: not to be
  retried blindly.
- a call the policy denies (audit/policy.py): a tool result with `isError`, a text
  naming the rule, and `_meta["mc/policy"]`; the server never sees the call. The MCP
  spec keeps JSON-RPC errors for protocol failures (unknown tool, malformed request)
  and reports failures a model can act on inside the result; a refusal is one: the
  model should try another way or ask its user, not retry the protocol.

A successful call of Kiwi's `execute` on a directive begins a run of it (kiwi/runs.py): a
thread of its own, child of the session's, where the session's later calls are recorded
and checked against the directive's permissions; the result's `_meta["mc/kiwi_thread_id"]`
names it.

Every result carries `_meta["mc/thread_id"]`, the thread the call was recorded on;
an agent hands it to a sub-agent as `_meta["mc/parent_thread_id"]` so the sub-agent's
thread is its child and inherits its grants (audit/inheritance.py).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.shared.exceptions import MCPError

from kiwi import runs as kiwi_runs
from mcps.endpoint import own_tools
from mcps.endpoint.gate import THREAD_META_KEY, authorize, denial_meta, parent_of
from mcps.endpoint.recorder import Call, CallHook, CallRecorder, Session
from mcps.endpoint.router import Router
from mcps.gateway.rpc import GatewayError
from mcps.models import AGGREGATE_ID

logger = logging.getLogger(__name__)

SEPARATOR = "__"
KIWI_THREAD_META_KEY = "mc/kiwi_thread_id"
INSTRUCTIONS = (
    "Mission Control routes these tools to the MCP servers it manages. A tool named "
    "`{server}__{tool}` is `tool` on `server`. Every call is recorded. The `missioncontrol__` "
    "tools answer questions about Mission Control itself: its logs, threads, servers, "
    "anomalies and directives."
)
# Our log levels back to MCP's (RFC 5424 names).
_MCP_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARN": "warning", "ERROR": "error"}

SessionOf = Callable[[Any], Session]
DeniedFn = Callable[[Session, str, str], None]


class AggregateServer(Server[Any]):
    """Advertises tools.listChanged to handshake-era clients on every transport."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True), *args, **kwargs
        )


def split_name(name: str) -> tuple[str, str] | None:
    server, sep, tool = name.partition(SEPARATOR)
    return (server, tool) if sep and server and tool else None


def build_server(
    router: Router,
    recorder: CallRecorder,
    session_of: SessionOf,
    on_denied: DeniedFn | None = None,
    on_called: CallHook | None = None,
) -> AggregateServer:
    """The MCP server over `router`; `session_of(ctx)` says which recorded session a call is in.

    A session whose role may not call tools gets an error for each call (`on_denied` is
    told); `on_called(session, call)` hears of every call forwarded (the access audit),
    when the recorder builds its events, after the answer.
    """

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        try:
            catalog = await router.catalog()
        except GatewayError as exc:
            # Mission Control's own tools need no gateway: an agent can still ask why it is down.
            logger.warning("mcp endpoint: listing the routed tools failed: %s", exc.reason)
            catalog = {}
        # A managed server that happens to be called `missioncontrol` is shadowed by our own tools.
        catalog = {**catalog, own_tools.PREFIX: own_tools.catalog()}
        tools = [
            types.Tool.model_validate({**tool, "name": f"{server}{SEPARATOR}{tool['name']}"})
            for server, server_tools in sorted(catalog.items())
            for tool in server_tools
        ]
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        target = split_name(params.name)
        if target is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name} (expected server__tool)")
        mcp_id, tool = target
        arguments = dict(params.arguments or {})
        root = session_of(ctx)
        session = recorder.current(root)  # a Kiwi directive run's, while one lasts
        if not session.may_call_tools:
            if on_denied is not None:
                on_denied(session, mcp_id, tool)
            raise MCPError(
                types.INVALID_REQUEST,
                f"Permission denied: {session.principal} may list tools but not call them "
                "(a viewer); calling tools needs the operator or admin role.",
            )

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        async def log(entry: dict[str, Any]) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK marks server logging as deprecated
                await ctx.session.send_log_message(
                    _MCP_LEVELS.get(entry["level"], "info"),
                    entry["data"] if entry.get("data") is not None else entry["message"],
                    logger=f"{mcp_id}/{entry['logger']}" if entry.get("logger") else mcp_id,
                    related_request_id=ctx.request_id,
                )

        own = mcp_id == own_tools.PREFIX
        if own and tool not in own_tools.TOOLS:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        started_at, clock = datetime.now(UTC), time.perf_counter()
        thread_id = session.thread_for_call()  # its own, or the directive run's
        # A run's calls stay in its thread; a session's are children of the parent they name.
        parent = None if session.thread_id else parent_of(ctx.meta)

        def ended(**outcome: Any) -> Call:
            elapsed = (time.perf_counter() - clock) * 1000
            outcome.setdefault("server", AGGREGATE_ID if own else "")  # Mission Control answers its own tools
            return Call(
                mcp_id,
                tool,
                arguments,
                started_at,
                elapsed,
                decision=decision,
                thread_id=thread_id,
                parent_id=parent,
                **outcome,
            )

        # Mission Control's own tools pass the same policy check as routed ones.
        annotations = own_tools.annotations(tool) if own else await router.annotations(mcp_id, tool)
        decision = await authorize(recorder, session, mcp_id, tool, annotations, thread_id, parent)
        if not decision.granted:
            text = decision.denial_text()
            recorder.record(session, ended(error=text))
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)],
                is_error=True,
                _meta=denial_meta(decision, thread_id),
            )
        if own:
            answer = await own_tools.call(tool, arguments, own_tools.Caller(session.user_id, session.team_id))
            recorder.record(session, ended(result=answer), then=on_called)
            own_answer = types.CallToolResult.model_validate(answer)
            own_answer.meta = {**(own_answer.meta or {}), THREAD_META_KEY: thread_id}
            return own_answer
        try:
            result = await router.call(mcp_id, tool, arguments, progress, log)
        except GatewayError as exc:
            # No such server: Mission Control answered, and files the call under itself.
            unknown = exc.status == 404 and exc.field == "mcp_id"
            answered = {"server": AGGREGATE_ID} if unknown else {}
            recorder.record(session, ended(error=exc.reason, outcome=exc.outcome, **answered), then=on_called)
            if exc.status == 404:
                raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}: {exc.reason}") from exc
            if exc.outcome_unknown:
                # Not a result the model can act on: the call may have run. An agent must
                # not simply retry it (a non-idempotent tool would run twice).
                raise MCPError(
                    types.INTERNAL_ERROR,
                    f"{params.name}: {exc.reason}",
                    {"outcome": exc.outcome, "status": exc.status, THREAD_META_KEY: thread_id},
                ) from exc
            where = f" ({exc.field})" if exc.field else ""
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"{exc.reason}{where}")],
                is_error=True,
                _meta={THREAD_META_KEY: thread_id},
            )
        except BaseException as exc:  # cancelled (the client went away), or a bug: still a failed call
            recorder.record(session, ended(error=f"{type(exc).__name__}: {exc}".rstrip(": ")), then=on_called)
            raise
        recorder.record(session, ended(result=result), then=on_called)
        answer = types.CallToolResult.model_validate(result)
        answer.meta = {**(answer.meta or {}), THREAD_META_KEY: thread_id}
        if kiwi_runs.starts_run(tool, arguments) and not result.get("isError"):
            run = await kiwi_runs.begin(
                recorder, root, session, thread_id, mcp_id, arguments, datetime.now(UTC)
            )
            answer.meta[KIWI_THREAD_META_KEY] = run.thread_id
        return answer

    def input_schema(name: str) -> dict[str, Any] | None:
        # For the SDK's check of 2026-07-28 `Mcp-Param-*` headers: without it, the SDK
        # would list every tool on every call to find this one schema.
        target = split_name(name)
        if target is not None and target[0] == own_tools.PREFIX:
            return own_tools.input_schema(target[1])
        return router.input_schema(*target) if target is not None else None

    return AggregateServer(
        "mission-control",
        get_tool_input_schema=input_schema,
        version=_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mission-control")
    except PackageNotFoundError:
        return "0.1.0"
