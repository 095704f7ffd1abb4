"""Each agent session on the aggregated endpoint becomes a Thread; each call, its steps.

The thread runs on the `mission-control` server (the endpoint itself); each step names
the server and tool the call was routed to.

A call is recorded after its answer is ready and never waits for the database: the
events (thread.started once, then per call a tool_call and a tool_result step and a
permission.check) go to an `EventBatcher`, which stores them through the ingest
pipeline and so onto the live channels. A call's place in its thread (its sequence
numbers) is taken when it is recorded; its events are built later, when their batch is
formed (`EventBatcher.add_later`), so the answer does not wait for that either.

What counts as one session:
- a legacy (handshake) client over HTTP: its `Mcp-Session-Id`, until it ends the
  session (HTTP DELETE) or stays idle for `idle_seconds`;
- a 2026-07-28 client, which has no session: the same principal and client
  (name and version from the request's `_meta`, network address), until idle;
- mcp_proxy: the whole stdio connection.
Sequence numbers are kept here, per thread, so two calls never share a step.

A session may begin a run of a Kiwi directive (kiwi/runs.py): a session of its own,
child of the thread the `execute` call was recorded on, whose thread starts with the
directive's steps (pending) and records the session's later calls, each checked against
the directive's declared permissions as well as the policy (`Session.declared`).

A session carries its subject (who the calls are from) and, when the client named one,
its parent thread (`_meta["mc/parent_thread_id"]`, see audit/inheritance.py); both go on
the thread (`parent_id`, `execution_context.subject`). Each call's policy decision
(audit/policy.py) is recorded as its permission.check, rules and chain included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audit.policy import ANONYMOUS, Decision, Declared, Link, Subject
from mcps.models import AGGREGATE_ID
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.ingest.events import Source
from missioncontrol.jsontext import dumps

MAX_ARGUMENTS_CHARS = 64 * 1024
SUMMARY_CHARS = 500


@dataclass
class Session:
    key: tuple[str, ...]
    thread_id: str
    via: str
    principal: str
    client: dict[str, Any]
    subject: Subject = ANONYMOUS
    parent_id: str | None = None
    # The caller's team (its thread joins it) and whether its role may call tools.
    team_id: int | None = None
    may_call_tools: bool = True
    user_id: int | None = None
    started: bool = False
    calls: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    ancestors: list[Link] | None = None  # resolved on the first call, root first
    # What its thread is, when not a plain session (a Kiwi directive run, kiwi/runs.py):
    mcp_id: str = AGGREGATE_ID
    user_input: str = ""
    context: dict[str, Any] = field(default_factory=dict)  # joins execution_context
    planned: list[dict[str, Any]] = field(default_factory=list)  # steps on its timeline from the start
    declared: Declared | None = None  # permissions its calls are checked against, too
    run: Session | None = None  # the directive run this session's calls go to now


@dataclass(frozen=True)
class Call:
    """One forwarded call, as it ended."""

    mcp_id: str
    tool: str
    arguments: dict[str, Any]
    started_at: datetime
    duration_ms: float
    result: dict[str, Any] | None = None  # the CallToolResult, wire shape
    error: str = ""  # the gateway's or the protocol's error, when there is no result
    decision: Decision | None = None  # the policy's verdict; a denied call was never forwarded


# Told of a recorded call once its events are built (the access audit, mcps/endpoint/http.py).
CallHook = Callable[["Session", Call], None]


class CallRecorder:
    def __init__(self, batcher: EventBatcher, *, idle_seconds: float = 1800.0) -> None:
        self.batcher = batcher
        self.idle_seconds = idle_seconds
        self.sessions: dict[tuple[str, ...], Session] = {}
        self.by_thread: dict[str, Session] = {}
        self._swept = time.monotonic()

    def session(
        self,
        key: tuple[str, ...],
        *,
        via: str,
        principal: str | None = None,
        client: dict[str, Any] | None,
        subject: Subject | None = None,
        parent_id: str | None = None,
        team_id: int | None = None,
        may_call_tools: bool = True,
        user_id: int | None = None,
    ) -> Session:
        """The live session for `key`, or a new one (a new thread) if it is unknown or idle.

        `principal` alone (no `subject`) is taken as a username.
        """
        if subject is None:
            subject = Subject(user=principal) if principal and principal != ANONYMOUS.label else ANONYMOUS
        now = time.monotonic()
        if now - self._swept > min(60.0, self.idle_seconds):  # not a scan per call
            self._swept = now
            self._end_idle(now)
        current = self.sessions.get(key)
        if current is not None and now - current.last_seen > self.idle_seconds:
            self.end(key)
            current = None
        if current is None:
            current = Session(
                key=key,
                thread_id=f"mcp-{uuid.uuid4().hex}",
                via=via,
                principal=principal or subject.label,
                client=client or {},
                subject=subject,
                parent_id=parent_id or None,
                team_id=team_id,
                may_call_tools=may_call_tools,
                user_id=user_id,
            )
            self.sessions[key] = current
            self.by_thread[current.thread_id] = current
        else:  # the role may have changed since (a token's owner demoted, say)
            current.may_call_tools = may_call_tools
        current.last_seen = now
        return current

    def current(self, session: Session) -> Session:
        """Where `session`'s next call goes: the directive run it began, while that lasts."""
        run = session.run
        if run is None:
            return session
        if self.sessions.get(run.key) is not run:  # ended (idle, or by its client)
            session.run = None
            return session
        run.last_seen = time.monotonic()
        return run

    def known(self, thread_id: str) -> tuple[str | None, Subject] | None:
        """A live session's parent and subject, by its thread id (for inheritance)."""
        session = self.by_thread.get(thread_id)
        return (session.parent_id, session.subject) if session is not None else None

    def start(self, session: Session, when: datetime) -> None:
        """Start `session`'s thread now (once): its thread.started and its planned steps."""
        if session.started:
            return
        self.batcher.add(*self._started(session, when), source=_source(session))

    def _started(self, session: Session, when: datetime) -> list[dict[str, Any]]:
        if session.started:
            return []
        session.started = True
        thread_id = session.thread_id
        client = session.client.get("name") or "an MCP client"
        events: list[dict[str, Any]] = [
            {
                "id": f"{thread_id}:started",
                "type": "thread.started",
                "timestamp": when.isoformat(),
                "thread_id": thread_id,
                "parent_id": session.parent_id,
                "mcp_id": session.mcp_id,
                "user_input": session.user_input or f"MCP session of {client} through {session.via}",
                "execution_context": {
                    "via": session.via,
                    "principal": session.principal,
                    "subject": session.subject.as_dict(),
                    "client": session.client,
                    "session": list(session.key),
                    **session.context,
                },
            }
        ]
        for n, step in enumerate(session.planned):
            events.append(
                {
                    "id": f"{thread_id}:{n}",
                    "type": "thread.step",
                    "timestamp": when.isoformat(),
                    "thread_id": thread_id,
                    "sequence": n,
                    "step_type": "directive",
                    "description": step.get("name") or f"step {n + 1}",
                    "details": {"planned": True, **step},
                    "status": "pending",
                }
            )
        return events

    def record(self, session: Session, call: Call, then: CallHook | None = None) -> None:
        """Record `call` as the next in `session`'s thread; `then(session, call)` is called
        when its events are built, in the batcher's flush."""
        started = self._started(session, call.started_at)
        if started:
            self.batcher.add(*started, source=_source(session))
        sequence = len(session.planned) + 2 * session.calls
        session.calls += 1

        def build() -> list[dict[str, Any]]:
            if then is not None:
                then(session, call)
            return self._call_events(session, call, sequence)

        self.batcher.add_later(build, source=_source(session))

    def _call_events(self, session: Session, call: Call, sequence: int) -> list[dict[str, Any]]:
        """A call's tool_call and tool_result steps, at `sequence`, and its permission check."""
        thread_id, when = session.thread_id, call.started_at
        ended_at = datetime.fromtimestamp(when.timestamp() + call.duration_ms / 1000, UTC)
        failed = bool(call.error) or bool(call.result and call.result.get("isError"))
        denied = call.decision is not None and not call.decision.granted
        name = f"{call.mcp_id}__{call.tool}"
        return [
            {
                "id": f"{thread_id}:{sequence}",
                "type": "thread.step",
                "timestamp": when.isoformat(),
                "thread_id": thread_id,
                "sequence": sequence,
                "step_type": "tool_call",
                "description": name,
                "details": {"mcp_id": call.mcp_id, "tool": call.tool, "arguments": _bounded(call.arguments)},
                "status": "complete",
            },
            {
                "id": f"{thread_id}:{sequence + 1}",
                "type": "thread.step",
                "timestamp": ended_at.isoformat(),
                "thread_id": thread_id,
                "sequence": sequence + 1,
                "step_type": "tool_result",
                "description": f"{name}: {'denied' if denied else 'error' if failed else 'ok'}",
                "details": _result_details(call),
                "status": "error" if failed else "complete",
                "duration_ms": round(call.duration_ms, 3),
            },
            _permission_check(session, call, f"{thread_id}:{sequence}:permission"),
        ]

    def end(self, key: tuple[str, ...], status: str = "complete") -> None:
        """The client ended its session: the thread ends (if a call ever started it)."""
        session = self.sessions.pop(key, None)
        if session is not None:
            self.by_thread.pop(session.thread_id, None)
            if session.run is not None:
                self.end(session.run.key, status)
        if session is not None and session.started:
            ended = {
                "id": f"{session.thread_id}:ended",
                "type": "thread.ended",
                "timestamp": datetime.now(UTC).isoformat(),
                "thread_id": session.thread_id,
                "status": status,
            }
            self.batcher.add(ended, source=_source(session))

    def end_under(self, prefix: tuple[str, ...]) -> None:
        """End every session whose key starts with `prefix` (one client session, any parent)."""
        for key in [k for k in self.sessions if k[: len(prefix)] == prefix]:
            self.end(key)

    def end_all(self) -> None:
        for key in list(self.sessions):
            self.end(key)

    def _end_idle(self, now: float) -> None:
        idle = [k for k, s in self.sessions.items() if now - s.last_seen > self.idle_seconds]
        for key in idle:
            self.end(key)


def _permission_check(session: Session, call: Call, event_id: str) -> dict[str, Any]:
    decision = call.decision
    check: dict[str, Any] = {
        "id": event_id,
        "type": "permission.check",
        "timestamp": call.started_at.isoformat(),
        "thread_id": session.thread_id,
        "user_id": session.principal,
        "resource": f"{call.mcp_id}/{call.tool}",
    }
    if decision is None:  # a caller that decides nothing (no policy in force)
        return check | {
            "action": "execute",
            "granted": True,
            "reason": "no policy",
            "rules_checked": [],
            "inheritance_chain": [session.thread_id],
        }
    return check | {
        "user_id": decision.subject.label,
        "action": decision.action,
        "granted": decision.granted,
        "reason": decision.reason,
        "rules_checked": decision.rules_checked,
        "inheritance_chain": decision.inheritance_chain,
        "severity": decision.severity,
    }


def _source(session: Session) -> Source:
    return Source(mcp_id=None, team_id=session.team_id)


def _bounded(arguments: dict[str, Any]) -> Any:
    text = dumps(arguments)
    if len(text) <= MAX_ARGUMENTS_CHARS:
        return arguments
    return {"truncated": True, "chars": len(text), "preview": text[:2000]}


def _result_details(call: Call) -> dict[str, Any]:
    details: dict[str, Any] = {"mcp_id": call.mcp_id, "tool": call.tool}
    if call.decision is not None and not call.decision.granted:
        details["denied"] = True
    if call.error:
        details["error"] = call.error
        return details
    result = call.result or {}
    texts = [c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"]
    kinds: dict[str, int] = {}
    for item in result.get("content", []):
        kinds[item.get("type", "?")] = kinds.get(item.get("type", "?"), 0) + 1
    details.update(
        is_error=bool(result.get("isError")),
        summary=" ".join(texts)[:SUMMARY_CHARS],
        content=kinds,
    )
    if result.get("structuredContent") is not None:
        structured = dumps(result["structuredContent"])
        details["structured"] = (
            result["structuredContent"]
            if len(structured) <= SUMMARY_CHARS * 4
            else structured[: SUMMARY_CHARS * 4]
        )
    return details
