"""Mission Control's own tools on its MCP endpoint: agents can ask it about itself.

Listed next to the routed tools as `missioncontrol__{tool}`, read-only, and answered
in this process from the database (no gateway hop, so they work while the gateway is
down). The endpoint records each call exactly like a routed one (server.py).

Each runs as its caller (the principal of the /mcp request or of mcp_proxy's token):
it reads through the same `visible_to(user)` as REST, so a team's agent reads its
team's logs and threads only, and `run_directive` acts for the caller (automations.scope).

- `search_logs`: the /api/logs filters (the seed's LogFilter, through LogFilterSet);
- `get_thread`: a thread with its children, timeline and transcript, as /api/threads/{id};
- `list_servers`: every MCP server with its status and latest health probe;
- `list_anomalies`: what detect_anomalies found (alert entries of the knowledge base);
- `list_directives`: the directives, their inputs and permissions;
- `run_directive`: run one through the directive engine (the only tool that changes
  anything; its run is a thread of its own, like any run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Count
from jsonschema import validators
from jsonschema.exceptions import best_match
from rest_framework.exceptions import ValidationError

from automations.models import Directive
from automations.scripts.anomalies import recent_anomalies
from logs.filtersets import LogFilterSet
from logs.models import LogEntry
from mcps.models import HealthCheck, MCPServer
from missioncontrol.jsontext import dumps
from missioncontrol.listing import filtered
from threads.models import Thread

PREFIX = "missioncontrol"
MAX_LOGS = 500
MAX_TIMELINE = 1000


class ToolFailure(Exception):
    """A call the agent can correct (bad arguments, unknown id): an `isError` result."""


@dataclass(frozen=True)
class Caller:
    """Who calls an own tool: the user (and the team) of the request's principal."""

    user_id: int | None
    team_id: int | None = None

    def user(self) -> Any:
        """The calling user, read again (a user deactivated meanwhile is refused)."""
        from django.contrib.auth import get_user_model

        found = get_user_model().objects.filter(pk=self.user_id, is_active=True).first()
        if found is None:
            raise ToolFailure("Mission Control's own tools answer a signed-in caller only")
        return found


@dataclass(frozen=True)
class Asked:
    """A call's caller, resolved: what the handlers read and act as."""

    user: Any
    team_id: int | None


@dataclass(frozen=True)
class OwnTool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    handler: Callable[[dict[str, Any], Asked], dict[str, Any]]
    read_only: bool = True

    def wire(self) -> dict[str, Any]:
        """The tool as tools/list shows it (before the endpoint adds the prefix)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": False,
                "idempotentHint": self.read_only,
                "openWorldHint": False,
            },
        }


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


# -- handlers (synchronous ORM, run off the event loop) --------------------------------


def search_logs(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    data: dict[str, str] = {}
    if args.get("query"):
        data["search"] = args["query"]
    for name in ("threads", "mcps", "levels", "services"):
        if args.get(name):
            data[name] = ",".join(args[name])
    for name in ("since", "from", "to"):
        if args.get(name):
            data[name] = args[name]
    try:
        logs = filtered(LogFilterSet, LogEntry.objects.visible_to(asked.user), data)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in dict(exc.detail).items())
        raise ToolFailure(problems) from None
    limit = args.get("limit", 50)
    rows = [log.as_event() for log in logs.order_by("-timestamp", "-id")[: limit + 1]]
    return {"logs": rows[:limit], "more": len(rows) > limit}


def get_thread(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    thread = Thread.objects.visible_to(asked.user).filter(id=args["thread_id"]).first()
    if thread is None:  # another team's answers as an unknown one: its id tells nothing
        raise ToolFailure(f"no thread {args['thread_id']!r}")
    state = thread.state(asked.user)
    state["timeline"] = state["timeline"][:MAX_TIMELINE]
    return state


def list_servers(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    # Servers are shared by every team (MCPServer.global_because).
    servers = MCPServer.objects.annotate(tool_count=Count("tools")).order_by("id")
    if args.get("status"):
        servers = servers.filter(status__in=args["status"])
    servers = list(servers)
    latest: dict[str, HealthCheck] = {}
    for check in HealthCheck.objects.filter(server__in=servers).order_by("server_id", "-checked_at"):
        latest.setdefault(check.server_id, check)  # the first per server is its newest
    return {
        "servers": [
            {
                "id": s.id,
                "name": s.name,
                "status": s.status,
                "managed": s.managed,
                "transport": s.transport,
                "enabled": s.enabled,
                "protocol_version": s.protocol_version,
                "tool_count": s.tool_count,
                "last_seen": s.last_seen.isoformat() if s.last_seen else None,
                "last_error": s.last_error,
                "health": _health(latest.get(s.id)),
            }
            for s in servers
        ]
    }


def _health(check: HealthCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "ok": check.ok,
        "latency_ms": check.latency_ms,
        "error": check.error,
        "checked_at": check.checked_at.isoformat(),
    }


def list_anomalies(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    return {"anomalies": recent_anomalies(asked.user, args.get("limit", 50), args.get("kind"))}


def list_directives(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    directives = Directive.objects.all()  # shared definitions (Directive.global_because)
    if "system" in args:
        directives = directives.filter(system=args["system"])
    return {
        "directives": [
            {
                "name": d.name,
                "version": d.version,
                "description": d.description,
                "system": d.system,
                "enabled": d.enabled,
                "inputs": d.definition.get("inputs") or {},
                "permissions": d.definition.get("permissions") or [],
                "scripts": d.script_names(),
                "tools": [f"{r.server}__{r.tool}" for r in d.tool_refs()],
            }
            for d in directives
        ]
    }


def run_directive(args: dict[str, Any], asked: Asked) -> dict[str, Any]:
    """Run a directive for the caller, to its end (its guards bound how long), and answer
    its execution; it reads what the caller may see within the caller's team."""
    from automations import runs
    from automations.inputs import InputError
    from automations.scope import Scope

    directive = Directive.objects.filter(name=args["directive"]).first()
    if directive is None:
        raise ToolFailure(f"no directive named {args['directive']!r} (see missioncontrol__list_directives)")
    try:
        execution = runs.start(
            asked.user,
            directive,
            args.get("inputs") or {},
            acting_for=Scope.for_user(asked.user, asked.team_id),
            wait=True,
        )
    except InputError as exc:
        raise ToolFailure(f"inputs: {exc}") from None
    except runs.Refused as exc:
        raise ToolFailure(str(exc)) from None
    return execution.summary()


TOOLS: dict[str, OwnTool] = {
    t.name: t
    for t in (
        OwnTool(
            "search_logs",
            "Search Mission Control's logs",
            "Log entries from every MCP server and agent, newest first. `query` is full-text "
            '(websearch syntax: words, "a phrase", -excluded, a or b); the other filters are '
            "those of /api/logs.",
            _obj(
                {
                    "query": {"type": "string", "description": "Full-text search of the message"},
                    "threads": _strings("Thread ids"),
                    "mcps": _strings("MCP server ids"),
                    "levels": {
                        "type": "array",
                        "items": {"enum": list(LogEntry.Level.values)},
                        "description": "Log levels",
                    },
                    "services": _strings("Service names"),
                    "since": {"type": "string", "description": "A duration back from now: 30m, 24h, 7d"},
                    "from": {"type": "string", "description": "ISO 8601 start time"},
                    "to": {"type": "string", "description": "ISO 8601 end time"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LOGS, "default": 50},
                }
            ),
            search_logs,
        ),
        OwnTool(
            "get_thread",
            "Get a thread with its timeline",
            "One agent thread: its fields, children, step timeline and LLM transcript.",
            _obj({"thread_id": {"type": "string", "minLength": 1}}, ["thread_id"]),
            get_thread,
        ),
        OwnTool(
            "list_servers",
            "List MCP servers and their health",
            "Every MCP server Mission Control knows: status, transport, tool count and latest health probe.",
            _obj(
                {
                    "status": {
                        "type": "array",
                        "items": {"enum": list(MCPServer.Status.values)},
                        "description": "Only servers with one of these statuses",
                    }
                }
            ),
            list_servers,
        ),
        OwnTool(
            "list_anomalies",
            "List detected anomalies",
            "Anomalies found by the detect_anomalies directive (slow threads, error- and "
            "denial-rate spikes), most recently seen first.",
            _obj(
                {
                    "kind": {
                        "type": "string",
                        "description": "slow_thread, thread_error_rate, log_error_rate or denial_rate",
                    },
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                }
            ),
            list_anomalies,
        ),
        OwnTool(
            "list_directives",
            "List directives",
            "Mission Control's directives (system and user): description, inputs, permissions, "
            "the scripts and tools they use.",
            _obj({"system": {"type": "boolean", "description": "Only system (true) or user (false) ones"}}),
            list_directives,
        ),
        OwnTool(
            "run_directive",
            "Run a directive",
            "Run one of Mission Control's directives with `inputs` and wait for its end: the "
            "execution's status, result or error, and the thread that recorded its steps.",
            _obj(
                {
                    "directive": {"type": "string", "minLength": 1, "description": "The directive's name"},
                    "inputs": {"type": "object", "description": "The directive's inputs by name"},
                },
                ["directive"],
            ),
            run_directive,
            read_only=False,
        ),
    )
}


def catalog() -> list[dict[str, Any]]:
    return [tool.wire() for tool in TOOLS.values()]


def annotations(name: str) -> dict[str, Any] | None:
    tool = TOOLS.get(name)
    return tool.wire()["annotations"] if tool is not None else None


def input_schema(name: str) -> dict[str, Any] | None:
    tool = TOOLS.get(name)
    return tool.input_schema if tool is not None else None


async def call(name: str, arguments: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """The CallToolResult (wire shape) of own tool `name` answered for `caller`; KeyError
    if there is no such tool."""
    tool = TOOLS[name]
    validator = validators.validator_for(tool.input_schema)(tool.input_schema)
    error = best_match(validator.iter_errors(arguments))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        return _error(
            f"fails the tool's input schema: {error.message}" + (f" (arguments.{where})" if where else "")
        )
    try:
        found = await sync_to_async(_answer)(tool, arguments, caller)
    except ToolFailure as exc:
        return _error(str(exc))
    return {"content": [{"type": "text", "text": dumps(found)}], "structuredContent": found, "isError": False}


def _answer(tool: OwnTool, arguments: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return tool.handler(arguments, Asked(caller.user(), caller.team_id))


def _error(reason: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": reason}], "isError": True}
