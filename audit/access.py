"""The access audit of Mission Control itself: `record()` is the one way to write it.

Logins and failed logins (through Django's signals, audit/signals.py), JWT issue and
refresh, API token use (at most once per token per minute), and every command: tool
calls (REST, WebSocket, /mcp), reconnects, directive runs, policy changes. Other apps
call `record()` (or `arecord()` from async code) for their own commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async

from audit.models import AccessEvent
from missioncontrol.bulk import insert_rows

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
# A `row()`'s keys, in the order `store_rows` inserts them.
ROW_FIELDS = ("timestamp", "actor_id", "actor_name", "action", "target", "outcome", "details", "ip")
SUCCESS, FAILURE, DENIED = _OUTCOMES = tuple(AccessEvent.Outcome.values)


def _check_outcome(outcome: str) -> None:
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome: expected one of {', '.join(_OUTCOMES)}, got {outcome!r}")


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
    user = actor if actor is not None and not isinstance(actor, str) else None
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    name = actor if isinstance(actor, str) else (user.get_username() if user is not None else "")
    fields = _fields(name, action, target, outcome, details, user.pk if user is not None else actor_id)
    return AccessEvent(**fields, ip=client_ip(request))


def record(actor: Any, action: str, target: str = "", **kwargs: Any) -> AccessEvent:
    """Record that `actor` did `action` to `target` (see `build`), stored before returning."""
    event = build(actor, action, target, **kwargs)
    event.save(force_insert=True)
    return event


arecord = sync_to_async(record, thread_sensitive=False)


def row(
    actor_name: str,
    action: str,
    target: str = "",
    *,
    outcome: str = SUCCESS,
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> dict[str, Any]:
    """The record that `actor_name` did `action` to `target`, now, as JSON for `store_rows`
    (in another process, or later): what `build` makes, without a model instance, for
    hot paths (every call through /mcp and mcp_proxy)."""
    fields = _fields(actor_name, action, target, outcome, details, actor_id)
    return {"timestamp": datetime.now(UTC).isoformat(), **fields, "ip": None}


def _fields(
    name: str, action: str, target: str, outcome: str, details: dict[str, Any] | None, actor_id: int | None
) -> dict[str, Any]:
    """A record's fields but its time and address."""
    _check_outcome(outcome)
    return {
        "actor_id": actor_id,
        "actor_name": name[:200],
        "action": action,
        "target": target[:500],
        "outcome": outcome,
        "details": details or {},
    }


def store_rows(rows: list[dict[str, Any]]) -> None:
    """Store `row()`s with one insert, each with the time it was made.

    Hot paths (the calls through /mcp and mcp_proxy) hand their rows to their
    EventBatcher, which stores them with the calls' own events, off the call's path.
    """
    insert_rows(
        AccessEvent,
        ROW_FIELDS,
        [(datetime.fromisoformat(r["timestamp"]), *(r[f] for f in ROW_FIELDS[1:])) for r in rows],
    )
