"""The access audit of Mission Control itself: `record()` is the one way to write it.

Logins and failed logins (through Django's signals, audit/signals.py), JWT issue and
refresh, API token use (at most once per token per minute), and every command: tool
calls (REST, WebSocket, /mcp), reconnects, directive runs, policy changes. Other apps
call `record()` (or `arecord()` from async code) for their own commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async

from audit.models import AccessEvent

logger = logging.getLogger(__name__)

LOGIN = "login"
LOGIN_FAILED = "login.failed"
TOKEN_ISSUED = "token.issued"
TOKEN_REFRESHED = "token.refreshed"
TOKEN_USED = "token.used"
TOKEN_REVOKED = "token.revoked"
TOOL_CALL = "tool.call"
RECONNECT = "server.reconnect"
DIRECTIVE_RUN = "directive.run"
POLICY_CHANGE = "policy.change"
ACTIONS = (
    LOGIN,
    LOGIN_FAILED,
    TOKEN_ISSUED,
    TOKEN_REFRESHED,
    TOKEN_USED,
    TOKEN_REVOKED,
    TOOL_CALL,
    RECONNECT,
    DIRECTIVE_RUN,
    POLICY_CHANGE,
)
SUCCESS, FAILURE, DENIED = AccessEvent.Outcome.values


def client_ip(request: Any) -> str | None:
    """The peer address of a Django request or an ASGI scope, if it has one."""
    if request is None:
        return None
    if isinstance(request, Mapping):  # an ASGI scope
        client = request.get("client")
        return client[0] if client else None
    return request.META.get("REMOTE_ADDR") or None


def build(
    actor: Any,
    action: str,
    target: str = "",
    *,
    outcome: str = SUCCESS,
    details: dict[str, Any] | None = None,
    request: Any = None,
    actor_id: int | None = None,
) -> AccessEvent:
    """The unsaved record that `actor` (a user, a name, or None) did `action` to `target`, now.

    `request` (a Django request or an ASGI scope) gives the client address; `actor_id`
    names the user by id when only its name is at hand (code off the request path).
    """
    if outcome not in AccessEvent.Outcome.values:
        raise ValueError(f"outcome: expected one of {', '.join(AccessEvent.Outcome.values)}, got {outcome!r}")
    user = actor if actor is not None and not isinstance(actor, str) else None
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    name = actor if isinstance(actor, str) else (user.get_username() if user is not None else "")
    return AccessEvent(
        actor_id=user.pk if user is not None else actor_id,
        actor_name=name[:200],
        action=action,
        target=target[:500],
        outcome=outcome,
        details=details or {},
        ip=client_ip(request),
    )


def record(actor: Any, action: str, target: str = "", **kwargs: Any) -> AccessEvent:
    """Record that `actor` did `action` to `target` (see `build`), stored before returning."""
    event = build(actor, action, target, **kwargs)
    event.save(force_insert=True)
    return event


arecord = sync_to_async(record, thread_sensitive=False)

# record_soon's records not yet written, per event loop; and the tasks writing them.
_pending: dict[asyncio.AbstractEventLoop, list[AccessEvent]] = {}
_background: set[asyncio.Task[Any]] = set()
# How long record_soon's records gather before one insert writes them all: a busy
# /mcp then pays one thread hop and one commit per batch, not one per call.
GATHER_SECONDS = 0.05


def record_soon(actor: Any, action: str, target: str = "", **kwargs: Any) -> None:
    """`record()` from the event loop without waiting for it: for hot paths (/mcp calls).

    The record is made now (its timestamp is the call's) and stored with the others of
    the next `GATHER_SECONDS` in one insert, off the event loop's thread. A failure to
    write is logged, never raised into the caller.
    """
    try:
        event = build(actor, action, target, **kwargs)
    except ValueError:
        logger.exception("access audit: could not record %s %s", action, target)
        return
    loop = asyncio.get_running_loop()
    pending = _pending.get(loop)
    if pending is not None:  # a writer is gathering on this loop already
        pending.append(event)
        return
    # This writer's own list: once it stops gathering, the next record starts another.
    events = _pending[loop] = [event]
    task = loop.create_task(_write_soon(loop, events))
    _background.add(task)
    task.add_done_callback(lambda done: _written(loop, events, done))


def _stop_gathering(loop: asyncio.AbstractEventLoop, events: list[AccessEvent]) -> bool:
    """Take `events` off the loop's gathering list, if it still is that; whether it was."""
    if _pending.get(loop) is events:
        del _pending[loop]
        return True
    return False


def _written(loop: asyncio.AbstractEventLoop, events: list[AccessEvent], task: asyncio.Task[None]) -> None:
    _background.discard(task)
    # A writer cancelled before it ever ran (its loop closed at once) wrote nothing: say so.
    if _stop_gathering(loop, events):
        logger.error("access audit: %d record(s) not written, their event loop closed", len(events))


async def _write_soon(loop: asyncio.AbstractEventLoop, events: list[AccessEvent]) -> None:
    try:
        await asyncio.sleep(GATHER_SECONDS)
    finally:  # also when cancelled (the loop closing): what was gathered is written
        _stop_gathering(loop, events)
        try:
            await asyncio.shield(_bulk_write(events))
        except Exception:
            logger.exception("access audit: could not record %d event(s)", len(events))


@sync_to_async(thread_sensitive=False)
def _bulk_write(events: list[AccessEvent]) -> None:
    AccessEvent.objects.bulk_create(events)


async def settle() -> None:
    """Wait for the records `record_soon` has started (shutdown, tests)."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
