"""Healing a server's connection (heal_mcp_connection): check, reconnect with backoff, log, escalate.

The gateway holds the sessions (mcps/gateway); these scripts ask it over the channel
layer, like the REST views do: a health probe of the one server, a reconnect (which
cuts the gateway's own backoff wait short), and its status while waiting.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import async_to_sync

from automations import events
from automations.script_registry import script
from automations.scripts.params import flag, integer, number, text
from mcps.gateway import rpc
from mcps.models import MCPServer

POLL_SECONDS = 0.2


def _gateway(op: rpc.Op, args: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return async_to_sync(rpc.request)(op, args, timeout=timeout)


def _server(mcp_id: Any) -> MCPServer:
    server = MCPServer.objects.filter(id=text("mcp_id", mcp_id)).first()
    if server is None:
        raise ValueError(f"no MCP server {mcp_id!r}")
    return server


def probe(mcp_id: str) -> dict[str, Any]:
    """One health probe through the gateway: {status: connected|disconnected|unknown, ...}."""
    try:
        result = _gateway("check_health", {"mcp_id": mcp_id})["results"][0]
    except rpc.GatewayError as exc:
        # 404: the gateway does not hold it (disabled, or it has not started yet).
        status = "disconnected" if exc.status == 404 else "unknown"
        return {"mcp_id": mcp_id, "status": status, "ok": False, "latency_ms": None, "error": exc.reason}
    return {
        "mcp_id": mcp_id,
        "status": "connected" if result["ok"] else "disconnected",
        "ok": result["ok"],
        "latency_ms": result["latency_ms"],
        "error": result["error"],
    }


@script(
    "check_mcp_status",
    "Probe one managed server through the gateway: status connected, disconnected, or unknown "
    "(no gateway answering).",
    permissions=["read:mcps"],
)
def check_mcp_status(mcp_id: str = "") -> dict[str, Any]:
    server = _server(mcp_id)
    if not server.managed:
        return {
            "mcp_id": server.id,
            "status": "unmanaged",
            "ok": False,
            "latency_ms": None,
            "error": "no transport",
        }
    return probe(server.id)


def _state(mcp_id: str) -> str:
    return _gateway("status", {}, timeout=10)["servers"].get(mcp_id, {}).get("status", "unknown")


def _connected_within(mcp_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if _state(mcp_id) == "connected":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


@script(
    "reconnect_mcp",
    "Ask the gateway to reconnect a server, up to `max_attempts` times, waiting "
    "`backoff_seconds` x 2^attempt for it each time; success once a probe answers.",
    permissions=["read:mcps", "execute:mcp_gateway"],
)
def reconnect_mcp(mcp_id: str = "", max_attempts: int = 3, backoff_seconds: float = 5) -> dict[str, Any]:
    server = _server(mcp_id)
    attempts = integer("max_attempts", max_attempts, minimum=1)
    backoff = number("backoff_seconds", backoff_seconds)
    started, error = time.monotonic(), ""
    for attempt in range(attempts):
        try:
            # A session still being set up is left to finish: asking again would drop it.
            if _state(server.id) != "connecting":
                _gateway("reconnect", {"mcp_id": server.id}, timeout=10)
            if _connected_within(server.id, backoff * 2**attempt):
                health = probe(server.id)
                if health["ok"]:
                    return {
                        "mcp_id": server.id,
                        "success": True,
                        "attempts": attempt + 1,
                        "latency_ms": health["latency_ms"],
                        "seconds": round(time.monotonic() - started, 3),
                        "error": "",
                    }
                error = health["error"]
            else:
                error = f"not connected within {backoff * 2**attempt:g} s"
        except rpc.GatewayError as exc:
            error = exc.reason
            if exc.status == 503:  # no gateway: retrying cannot help
                return {"mcp_id": server.id, "success": False, "attempts": attempt + 1, "error": error}
            time.sleep(backoff * 2**attempt)
    return {
        "mcp_id": server.id,
        "success": False,
        "attempts": attempts,
        "seconds": round(time.monotonic() - started, 3),
        "error": error,
    }


@script(
    "log_recovery",
    "Log (INFO) that a server recovered, through the ingest pipeline.",
    permissions=["write:logs"],
)
def log_recovery(
    mcp_id: str = "", message: str = "MCP reconnected successfully", attempts: int = 0
) -> dict[str, Any]:
    server = _server(mcp_id)
    log_id = events.log(
        "INFO",
        f"{server.id}: {text('message', message)}",
        mcp_id=server.id,
        recovered=True,
        attempts=attempts,
    )
    return {"mcp_id": server.id, "logged": log_id}


@script(
    "log_failure",
    "Log (ERROR) that a server could not be healed; with `escalate`, also an `mcp.escalated` "
    "alert (critical) on global and the server's channel.",
    permissions=["write:logs"],
)
def log_failure(
    mcp_id: str = "", message: str = "Failed to reconnect MCP", escalate: bool = True, error: str = ""
) -> dict[str, Any]:
    server = _server(mcp_id)
    escalate = flag("escalate", escalate)
    line = f"{server.id}: {text('message', message)}" + (f" ({error})" if error else "")
    log_id = events.log("ERROR", line, mcp_id=server.id, recovered=False, error=error, escalated=escalate)
    alert = (
        events.alert("mcp.escalated", line, severity="critical", mcp_id=server.id, error=error)
        if escalate
        else None
    )
    return {"mcp_id": server.id, "logged": log_id, "escalated": alert is not None, "alert": alert}
