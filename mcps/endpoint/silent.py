"""Which /mcp requests can be answered with one JSON body instead of a deferred stream.

A 2026-07-28 request gets notifications only if it asks: progress with
`_meta.progressToken`, log messages with `_meta["io.modelcontextprotocol/logLevel"]`
(the server must not send them otherwise). The SDK's default answer (SSE mode) runs
every request's handler as a task beside a disconnect watcher, behind a memory stream,
in case a notification comes; its JSON mode runs the handler in place. A request that
asked for neither is served by a JSON-mode manager: the same answer, for less work
on every call an agent makes. Handshake-era requests (a session, `logging/setLevel`)
and any request that asked for notifications keep the default.

One difference: in JSON mode a client that hangs up is not watched for, so the tool
call it made runs to its end (and is recorded) rather than being cancelled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from missioncontrol.jsontext import loads

Receive = Callable[[], Awaitable[dict[str, Any]]]

_VERSION_HEADER = b"mcp-protocol-version"


def is_modern_post(scope: dict[str, Any]) -> bool:
    """A POST past the handshake era (2026-07-28): one exchange per request, no session.

    Told apart by its `MCP-Protocol-Version` header, as the SDK's manager does."""
    if scope["method"] != "POST":
        return False
    version = next((v for k, v in scope["headers"] if k == _VERSION_HEADER), None)
    return version is not None and version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS


def wants_no_notifications(body: bytes) -> bool:
    """A JSON-RPC request that asked for neither progress nor log messages."""
    try:
        message = loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or "id" not in message:
        return False
    if not isinstance(message.get("method"), str) or message["method"] == "subscriptions/listen":
        return False  # a listen answer is a notification stream
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    if meta is None:
        return True
    return isinstance(meta, dict) and "progressToken" not in meta and types.LOG_LEVEL_META_KEY not in meta


async def read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The request's body (None if it is over `limit` bytes or the client left) and a
    `receive` that hands the same messages again, then the rest."""
    messages: list[dict[str, Any]] = []
    size, body = 0, None
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            break
        if not message.get("more_body", False):
            body = b"".join(m.get("body", b"") for m in messages)
            break
    replay = deque(messages)

    async def again() -> dict[str, Any]:
        return replay.popleft() if replay else await receive()

    return body, again
