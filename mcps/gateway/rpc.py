"""Web processes talk to the gateway over the channel layer.

A request goes to the one channel `gateway_channel()`; on the caller's reply channel the
gateway may send progress and log frames, then one result or error. An operation not
answered within `ACK_AFTER` is acknowledged first; no word at all within `ACK_SECONDS`
means no gateway is running: `GatewayDown` (answered 503). Every answer is a plain
dict, so the REST views, the WebSocket consumer and the /mcp endpoint share this client.

A tool call may change the world, so its caller must learn whether it could have run:
- the gateway acknowledges a `call_tool` as it receives it, before it forwards it, and
  forwards none received after the request's `ack_by` (the caller has given up by then):
  no acknowledgement means the call was never sent (`GatewayDown`, 503, safe to retry);
- while it runs, the gateway beats on its reply channel every `BEAT_SECONDS`; silence for
  `DEAD_AFTER` means the gateway died with the call in flight: `OutcomeUnknown` (502,
  outcome "unknown": it may or may not have run), within seconds rather than at the timeout.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypedDict

from channels.layers import get_channel_layer
from django.conf import settings


def gateway_channel() -> str:
    """The channel the gateway process receives requests on, under this installation's prefix."""
    return f"{settings.CHANNEL_PREFIX}.gateway"


def heartbeat_group() -> str:
    """The group every gateway beats to and every web process listens on (monitor.py)."""
    return f"gateway-heartbeat.{settings.CHANNEL_PREFIX}"


ACK_SECONDS = 3.0  # no word from the gateway within this: it is not running
ACK_AFTER = 0.5  # the gateway acknowledges an operation not answered within this
ACK_MARGIN = 0.5  # a call_tool received later than ACK_SECONDS - this after it was sent is not run
BEAT_SECONDS = 1.0  # the gateway's heartbeat, on each running call's reply channel and to every process
DEAD_AFTER = 4.0  # no beat for this long: the gateway is gone
UNKNOWN = "unknown"  # a call's outcome when it may or may not have run

Op = Literal[
    "call_tool", "list_tools", "catalog", "reconnect", "status", "check_health", "discover", "test_connection"
]


class Request(TypedDict):
    type: Literal["gateway.request"]
    id: str
    reply_to: str | None  # None: a notice, nobody waits for the answer
    op: Op
    args: dict[str, Any]
    ack_by: float


class Reply(TypedDict):
    type: Literal["gateway.reply"]
    id: str
    kind: Literal["ack", "beat", "progress", "log", "result", "error"]
    payload: dict[str, Any]


class GatewayError(Exception):
    """An answer the caller turns into an HTTP status (or an MCP / WebSocket error)."""

    def __init__(
        self, status: int, reason: str, field: str | None = None, outcome: str | None = None
    ) -> None:
        super().__init__(reason)
        self.status, self.reason, self.field = status, reason, field
        # "unknown": a tool call that may or may not have run (never retry it blindly).
        self.outcome = outcome

    @property
    def outcome_unknown(self) -> bool:
        return self.outcome == UNKNOWN

    def as_payload(self) -> dict[str, Any]:
        payload = {"status": self.status, "reason": self.reason, "field": self.field}
        if self.outcome is not None:
            payload["outcome"] = self.outcome
        return payload


class GatewayDown(GatewayError):
    """No gateway took the request: nothing was sent to any server."""

    def __init__(self) -> None:
        super().__init__(503, "the MCP gateway is not running (start `manage.py run_gateway`)")


class OutcomeUnknown(GatewayError):
    """The call reached a server (or may have), and its answer was lost: it may have run."""

    def __init__(self, reason: str) -> None:
        super().__init__(502, reason, None, UNKNOWN)


async def request(
    op: Op,
    args: dict[str, Any],
    *,
    timeout: float = 60.0,
    on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_log: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Ask the gateway; its result payload, or GatewayError.

    With `on_log`, the server's log notifications during a call_tool are relayed too.
    """
    if on_log is not None:
        args = {**args, "relay_logs": True}
    layer = get_channel_layer()
    if layer is None:
        raise GatewayDown()
    reply_to = await layer.new_channel("mc.gateway.reply.")
    calls = op == "call_tool"
    try:
        await layer.send(gateway_channel(), _request(op, args, reply_to))
        try:
            async with asyncio.timeout(ACK_SECONDS):
                first = await layer.receive(reply_to)
        except TimeoutError:
            raise GatewayDown() from None
        async with asyncio.timeout(timeout + ACK_SECONDS):
            answer = first
            while True:
                if answer["kind"] == "result":
                    return answer["payload"]
                if answer["kind"] == "error":
                    p = answer["payload"]
                    raise GatewayError(p["status"], p["reason"], p.get("field"), p.get("outcome"))
                if answer["kind"] == "progress" and on_progress is not None:
                    await on_progress(answer["payload"])
                elif answer["kind"] == "log" and on_log is not None:
                    await on_log(answer["payload"])
                try:
                    async with asyncio.timeout(DEAD_AFTER):
                        answer = await layer.receive(reply_to)
                except TimeoutError:
                    raise OutcomeUnknown(
                        f"the MCP gateway stopped answering (no heartbeat for {DEAD_AFTER:g} s) "
                        "while the call was in flight: it may or may not have run"
                        if calls
                        else f"the MCP gateway stopped answering (no heartbeat for {DEAD_AFTER:g} s)"
                    ) from None
    except TimeoutError:
        raise GatewayError(
            504, f"no answer from the gateway within {timeout:g} s", "timeout", UNKNOWN if calls else None
        ) from None
    finally:
        discard = getattr(layer, "discard_channel", None)
        if discard is not None:
            await discard(reply_to)


async def notify(op: Op, args: dict[str, Any]) -> None:
    """Tell the gateway without waiting (e.g. "discover" after a server was registered).

    If no gateway runs, nothing happens: it re-reads the servers when it starts and on
    every discovery interval anyway.
    """
    layer = get_channel_layer()
    if layer is not None:
        await layer.send(gateway_channel(), _request(op, args, None))


def _request(op: Op, args: dict[str, Any], reply_to: str | None) -> dict[str, Any]:
    message: Request = {
        "type": "gateway.request",
        "id": uuid.uuid4().hex,
        "reply_to": reply_to,
        "op": op,
        "args": args,
        # Wall clock: the caller stops waiting for the acknowledgement then, and takes the
        # call as never sent; the gateway sends none it receives later (clocks must agree).
        "ack_by": time.time() + ACK_SECONDS - ACK_MARGIN,
    }
    return dict(message)


async def reply(reply_to: str, request_id: str, kind: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    await layer.send(reply_to, {"type": "gateway.reply", "id": request_id, "kind": kind, "payload": payload})
