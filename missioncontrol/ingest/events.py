"""Validation of ingested events: the contract's types, fields and their reasons to reject.

Hand-written checks rather than a serializer per event: this runs for every event of
every batch, so it stays a few dictionary look-ups per field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from audit.models import PermissionEvent
from logs.models import LogEntry
from threads.models import ExecutionStep, LLMMessage, Thread

EventType = Literal[
    "thread.started",
    "thread.step",
    "thread.message",
    "thread.ended",
    "log",
    "permission.check",
    "session.ended",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
MAX_ID = 200

# Computed once: Django's `Choices.values` rebuilds its list on every access.
STEP_TYPES = tuple(ExecutionStep.StepType.values)
STEP_STATUSES = tuple(ExecutionStep.Status.values)
ROLES = tuple(LLMMessage.Role.values)
FINAL_STATUSES = tuple(str(s) for s in Thread.FINAL)
LEVELS = tuple(LogEntry.Level.values)
ACTIONS = tuple(PermissionEvent.Action.values)
SEVERITIES = tuple(PermissionEvent.Severity.values)


class Invalid(Exception):
    """An event field is missing or malformed."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Source:
    """Who pushes: the ingest key's server, if the key is bound to one, and its team
    (an ingest key's or an API token's), which the threads and logs it creates join.

    A source writes only threads of its own team (no team: threads of no team); an
    event for another team's thread is rejected (missioncontrol.ingest.pipeline).
    `system` sources are Mission Control's own writers (a server's tailed log files,
    the maintenance scripts), which may name any team's thread.
    """

    mcp_id: str | None
    team_id: int | None = None
    system: bool = False


def parse_timestamp(value: Any, field: str = "timestamp") -> datetime:
    if isinstance(value, datetime):  # from a decoder that has one already (OTLP), never from JSON
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        raise Invalid(field, "required, an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"not an ISO 8601 date-time: {value[:60]!r}") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # what is stored: 9999-12-31T23:59-10:00 lies past it
    except OverflowError:
        raise Invalid(field, "outside the years 1 to 9999 in UTC") from None
    return parsed


def _str(
    event: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    max_len: int | None = None,
    default: str | None = None,
) -> str | None:
    value = event.get(name)
    if value is None:
        if required:
            raise Invalid(name, "required")
        return default
    if not isinstance(value, str):
        raise Invalid(name, f"expected a string, got {type(value).__name__}")
    if required and not value:
        raise Invalid(name, "must not be empty")
    if max_len is not None and len(value) > max_len:
        raise Invalid(name, f"longer than {max_len} characters")
    return value


def _choice(
    event: Mapping[str, Any],
    name: str,
    choices: tuple[str, ...],
    *,
    default: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> str:
    value = event.get(name)
    if value is None:
        if default is None:
            raise Invalid(name, f"required, one of {', '.join(choices)}")
        return default
    if isinstance(value, str):
        value = (aliases or {}).get(value, value)
        if value in choices:
            return value
    raise Invalid(name, f"expected one of {', '.join(choices)}, got {value!r}")


def _dict(event: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(name, f"expected an object, got {type(value).__name__}")
    return value


def _list(event: Mapping[str, Any], name: str) -> list[Any]:
    value = event.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(name, f"expected an array, got {type(value).__name__}")
    return value


def _number(
    event: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    integer: bool = False,
    minimum: float | None = None,
) -> Any:
    value = event.get(name)
    if value is None:
        if required:
            raise Invalid(name, "required")
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise Invalid(name, f"expected {'an integer' if integer else 'a number'}, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise Invalid(name, f"must be >= {minimum:g}")
    return value


def _bool(event: Mapping[str, Any], name: str, *, required: bool = False, default: bool = False) -> bool:
    value = event.get(name)
    if value is None:
        if required:
            raise Invalid(name, "required, true or false")
        return default
    if not isinstance(value, bool):
        raise Invalid(name, f"expected true or false, got {type(value).__name__}")
    return value


def _mcp_id(event: Mapping[str, Any], source: Source, *, required: bool) -> str | None:
    value = _str(event, "mcp_id", max_len=MAX_ID)
    if source.mcp_id is not None:
        if value is not None and value != source.mcp_id:
            raise Invalid("mcp_id", f"this ingest key reports for server {source.mcp_id!r} only")
        return source.mcp_id
    if required and not value:
        raise Invalid("mcp_id", "required (or push with a key bound to a server)")
    return value


def _thread_started(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {
        "thread_id": _str(e, "thread_id", required=True, max_len=MAX_ID),
        "parent_id": _str(e, "parent_id", max_len=MAX_ID),
        "mcp_id": _mcp_id(e, source, required=True),
        "user_input": _str(e, "user_input", default=""),
        "execution_context": _dict(e, "execution_context"),
        "session_id": _str(e, "session_id", max_len=MAX_ID) or None,
    }


def _thread_step(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {
        "thread_id": _str(e, "thread_id", required=True, max_len=MAX_ID),
        "sequence": _number(e, "sequence", required=True, integer=True, minimum=0),
        "step_type": _choice(e, "step_type", STEP_TYPES),
        "description": _str(e, "description", default=""),
        "details": _dict(e, "details"),
        "status": _choice(e, "status", STEP_STATUSES, default="complete"),
        "duration_ms": _number(e, "duration_ms", minimum=0),
        "memory_usage": _number(e, "memory_usage", integer=True, minimum=0),
        "cpu_usage": _number(e, "cpu_usage", minimum=0),
    }


def _thread_message(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {
        "thread_id": _str(e, "thread_id", required=True, max_len=MAX_ID),
        "role": _choice(e, "role", ROLES, aliases={"assistant": "agent"}),
        "content": _str(e, "content", required=False, default=""),
        "metadata": _dict(e, "metadata"),
    }


def _thread_ended(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {
        "thread_id": _str(e, "thread_id", required=True, max_len=MAX_ID),
        "status": _choice(e, "status", FINAL_STATUSES),
        "memory_usage": _number(e, "memory_usage", integer=True, minimum=0),
        "cpu_usage": _number(e, "cpu_usage", minimum=0),
    }


def _session_ended(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {"session_id": _str(e, "session_id", required=True, max_len=MAX_ID)}


_LEVEL_ALIASES = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "WARNING": "WARN",
    "error": "ERROR",
    "critical": "ERROR",
    "CRITICAL": "ERROR",
    "fatal": "ERROR",
    "FATAL": "ERROR",
}


def _log(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    return {
        "level": _choice(e, "level", LEVELS, aliases=_LEVEL_ALIASES),
        "service": _str(e, "service", required=True, max_len=100),
        "thread_id": _str(e, "thread_id", max_len=MAX_ID),
        "mcp_id": _mcp_id(e, source, required=True),
        "message": _str(e, "message", required=True),
        "context": _dict(e, "context"),
        "exception": _str(e, "exception"),
    }


def _permission_check(e: Mapping[str, Any], source: Source) -> dict[str, Any]:
    granted = _bool(e, "granted", required=True)
    escalation = _bool(e, "escalation_detected")
    chain = _list(e, "inheritance_chain")
    # Thread ids root first; or, as the gateway records them, objects naming the thread
    # and what it was granted: {"thread_id", "subject", "granted", "rule"}.
    if not all(
        isinstance(link, str) or (isinstance(link, dict) and isinstance(link.get("thread_id"), str))
        for link in chain
    ):
        raise Invalid("inheritance_chain", "expected an array of thread ids (or of {thread_id, granted})")
    return {
        "thread_id": _str(e, "thread_id", required=True, max_len=MAX_ID),
        "user_id": _str(e, "user_id", max_len=MAX_ID, default=""),
        "resource": _str(e, "resource", required=True, max_len=500),
        "action": _choice(e, "action", ACTIONS),
        "granted": granted,
        "reason": _str(e, "reason", default=""),
        "rules_checked": _list(e, "rules_checked"),
        "inheritance_chain": chain,
        "escalation_detected": escalation,
        "escalations": _list(e, "escalations"),
        "severity": _choice(
            e,
            "severity",
            SEVERITIES,
            default=PermissionEvent.default_severity(granted, escalation),
        ),
    }


_VALIDATORS: dict[str, Callable[[Mapping[str, Any], Source], dict[str, Any]]] = {
    "thread.started": _thread_started,
    "thread.step": _thread_step,
    "thread.message": _thread_message,
    "thread.ended": _thread_ended,
    "log": _log,
    "permission.check": _permission_check,
    "session.ended": _session_ended,
}


def validate(raw: Any, source: Source) -> dict[str, Any]:
    """The normalized event (`id`, `type`, `timestamp` as datetime, typed fields) or Invalid."""
    if not isinstance(raw, dict):
        raise Invalid("event", f"expected an object, got {type(raw).__name__}")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise Invalid("id", "required, a non-empty string")
    if len(event_id) > MAX_ID:
        raise Invalid("id", f"longer than {MAX_ID} characters")
    kind = raw.get("type")
    validator = _VALIDATORS.get(kind) if isinstance(kind, str) else None
    if validator is None:
        raise Invalid("type", f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}")
    event = validator(raw, source)
    event["id"] = event_id
    event["type"] = kind
    event["timestamp"] = parse_timestamp(raw.get("timestamp"))
    return event
