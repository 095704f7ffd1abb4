"""Each call through the aggregated endpoint becomes a thread of its own, filed under the
server that answered it; the client's session groups them.

A call is recorded after its answer is ready and never waits for the database: its
events (thread.started, a tool_call and a tool_result step, a permission.check, then
thread.ended with the call's outcome) go to an `EventBatcher`, which stores them through
the ingest pipeline and so onto the live channels. They are built later, when their
batch is formed (`EventBatcher.add_later`), so the answer does not wait for that either.
A call that failed (an `isError` result, a JSON-RPC or transport error, a timeout, a
policy denial) is a failed tool_result step and a thread that ended in error.

The thread runs on the server the call was routed to (`time` for `time__get_current_time`,
`mission-control` for Mission Control's own tools), so that server's page and
`/api/threads?mcp=<server>` list it. An agent groups its calls by naming its own thread
as their parent (`_meta["mc/parent_thread_id"]`, audit/inheritance.py): each call is
then a child of it, and inherits its grants. (A progress token names one request, so
a call that carries one is its own thread as well.)

What counts as one client session (threads.models.Session, `session_id` on each thread):
- a legacy (handshake) client over HTTP: its `Mcp-Session-Id`, until it ends the
  session (HTTP DELETE) or stays idle for `idle_seconds`;
- a 2026-07-28 client, which has no session: the same principal and client
  (name and version from the request's `_meta`, network address), until idle;
- mcp_proxy: the whole stdio connection.
A session is recorded by its first call's thread (who, through what, which client) and
ended by a `session.ended` event; it never is a thread that stays running. The REST
and WebSocket tool calls (gate.DirectCall) are one call each, with no session.

A session may begin a run of a Kiwi directive (kiwi/runs.py): the one case where calls
share a thread. The run's thread, on the Kiwi server and in the same session, is a
child of the thread the `execute` call was recorded on; it starts with the directive's
steps (pending) and records the session's later calls (its sequence numbers kept here,
so two calls never share a step), each checked against the directive's declared
permissions as well as the policy (`Session.declared`). It ends with the session, or
when the session runs another directive.

A session carries its subject (who the calls are from) and, when the client named one,
its parent thread; both go on each thread (`parent_id`, `execution_context.subject`).
Each call's policy decision (audit/policy.py) is recorded as its permission.check, rules
and chain included.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
    """Where calls are recorded: a client session (a thread per call), or a Kiwi directive
    run (`thread_id` set: one thread holds its calls)."""

    key: tuple[str, ...]
    id: str | None  # the session record its threads name; None: a one-off call (REST, WebSocket)
    via: str
    principal: str
    client: dict[str, Any]
    subject: Subject = ANONYMOUS
    parent_id: str | None = None
    # The caller's team (its threads join it) and whether its role may call tools.
    team_id: int | None = None
    may_call_tools: bool = True
    user_id: int | None = None
    started: bool = False  # a thread was recorded in it (so its end is news)
    calls: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    # Each parent's ancestors (root first), resolved on the first call naming it.
    ancestors: dict[str | None, list[Link]] = field(default_factory=dict)
    # A Kiwi directive run (kiwi/runs.py) records its calls in one thread:
    thread_id: str | None = None
    mcp_id: str = AGGREGATE_ID
    user_input: str = ""
    context: dict[str, Any] = field(default_factory=dict)  # joins execution_context
    planned: list[dict[str, Any]] = field(default_factory=list)  # steps on its timeline from the start
    declared: Declared | None = None  # permissions its calls are checked against, too
    run: Session | None = None  # the directive run this session's calls go to now

    def thread_for_call(self) -> str:
        """The thread the next call is recorded on: the run's, or a new one of its own."""
        return self.thread_id or f"mcp-{uuid.uuid4().hex}"


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
    thread_id: str = ""  # its thread (Session.thread_for_call), named in its answer's _meta
    parent_id: str | None = None  # the thread its request named as parent, else its session's
    # Who answered, when not `mcp_id`: Mission Control itself (AGGREGATE_ID), for its own
    # tools (`missioncontrol__...`) and for a server that does not exist.
    server: str = ""
    # "unknown": the call failed after it was sent (its server or the gateway was lost,
    # or it timed out): it may or may not have run.
    outcome: str | None = None

    @property
    def answered_by(self) -> str:
        """The server its thread is filed under."""
        return self.server or self.mcp_id

    @property
    def failed(self) -> bool:
        """Refused, not answered (an error, a timeout), or answered with an error result."""
        denied = self.decision is not None and not self.decision.granted
        return denied or bool(self.error) or bool(self.result and self.result.get("isError"))


# Told of a recorded call once its events are built (the access audit, mcps/endpoint/http.py).
CallHook = Callable[["Session", Call], None]


class CallRecorder:
    # Per-call threads remembered for inheritance (`known`), the latest first to go.
    MAX_KNOWN_CALLS = 10_000

    def __init__(self, batcher: EventBatcher, *, idle_seconds: float = 1800.0) -> None:
        self.batcher = batcher
        self.idle_seconds = idle_seconds
        self.sessions: dict[tuple[str, ...], Session] = {}
        self.by_thread: dict[str, Session] = {}  # the live Kiwi runs, by their thread
        # Recent call threads: (parent, subject), so a sub-agent naming one as its parent
        # inherits from it before its batch is stored.
        self.recent: OrderedDict[str, tuple[str | None, Subject, int | None]] = OrderedDict()
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
        recorded: bool = True,
    ) -> Session:
        """The live session for `key`, or a new one if it is unknown or idle.

        `principal` alone (no `subject`) is taken as a username. `recorded=False`: a
        one-off call's session, which names no session record on its thread.
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
                id=f"session-{uuid.uuid4().hex}" if recorded else None,
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

    def known(self, thread_id: str) -> tuple[str | None, Subject, int | None] | None:
        """A thread's parent, subject and team, for inheritance: a live run's or a recent call's."""
        run = self.by_thread.get(thread_id)
        return (run.parent_id, run.subject, run.team_id) if run is not None else self.recent.get(thread_id)

    def begin_run(self, run: Session, thread_id: str) -> None:
        """Make `run` (a session of its own) record its calls in one thread, `thread_id`."""
        run.thread_id = thread_id
        self.by_thread[thread_id] = run

    def start(self, session: Session, when: datetime) -> None:
        """Start a run's thread now (once): its thread.started and its planned steps."""
        if session.started or session.thread_id is None:
            return
        self.batcher.add(*self._run_started(session, when), source=_source(session))

    def _run_started(self, session: Session, when: datetime) -> list[dict[str, Any]]:
        if session.started or session.thread_id is None:
            return []
        session.started = True
        thread_id = session.thread_id
        events: list[dict[str, Any]] = [
            {
                "id": f"{thread_id}:started",
                "type": "thread.started",
                "timestamp": when.isoformat(),
                "thread_id": thread_id,
                "parent_id": session.parent_id,
                "mcp_id": session.mcp_id,
                "session_id": session.id,
                "user_input": session.user_input,
                "execution_context": _context(session),
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

    def record(self, session: Session, call: Call, then: CallHook | None = None) -> str:
        """Record `call` (on `call.thread_id`, else a thread `session` gives it); its thread id.

        In a run, the call is the run's next; otherwise its thread of its own starts and
        ends with it. `then(session, call)` is called when its events are built, in the
        batcher's flush.
        """
        if session.thread_id is not None:
            thread_id = session.thread_id
            started = self._run_started(session, call.started_at)
            if started:
                self.batcher.add(*started, source=_source(session))
            sequence = len(session.planned) + 2 * session.calls
        else:
            thread_id = call.thread_id or session.thread_for_call()
            session.started = True
            sequence = 0
            self.recent[thread_id] = (call.parent_id or session.parent_id, session.subject, session.team_id)
            while len(self.recent) > self.MAX_KNOWN_CALLS:
                self.recent.popitem(last=False)
        session.calls += 1
        call = replace(call, thread_id=thread_id)

        def build() -> list[dict[str, Any]]:
            if then is not None:
                then(session, call)
            if session.thread_id is None:
                return call_thread(session, call)
            return _call_events(session, call, thread_id, sequence)

        self.batcher.add_later(build, source=_source(session))
        return thread_id

    def end(self, key: tuple[str, ...], status: str = "complete") -> None:
        """The client ended its session: a run's thread ends, a client session is ended."""
        session = self.sessions.pop(key, None)
        if session is None:
            return
        if session.run is not None:
            self.end(session.run.key, status)
        if not session.started:
            return
        now = datetime.now(UTC).isoformat()
        if session.thread_id is not None:
            self.by_thread.pop(session.thread_id, None)
            ended = {
                "id": f"{session.thread_id}:ended",
                "type": "thread.ended",
                "timestamp": now,
                "thread_id": session.thread_id,
                "status": status,
            }
            self.batcher.add(ended, source=_source(session))
        elif session.id is not None:
            closed = {
                "id": f"{session.id}:ended",
                "type": "session.ended",
                "timestamp": now,
                "session_id": session.id,
            }
            self.batcher.add(closed, source=_source(session))

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


def _context(session: Session) -> dict[str, Any]:
    return {
        "via": session.via,
        "principal": session.principal,
        "subject": session.subject.as_dict(),
        "client": session.client,
        **session.context,
    }


def call_thread(session: Session, call: Call, *, check: bool = True) -> list[dict[str, Any]]:
    """The events of `call` (`call.thread_id` set) as a thread of its own on the server it
    called: started, its tool_call and tool_result steps, its permission check (unless
    `check` is false: the caller records its own), ended with the call's outcome."""
    events = _call_events(session, call, call.thread_id, 0)
    if not check:
        events = [e for e in events if e["type"] != "permission.check"]
    return [_call_started(session, call, call.thread_id), *events, _call_ended(call, call.thread_id)]


def _call_started(session: Session, call: Call, thread_id: str) -> dict[str, Any]:
    client = session.client.get("name") or "an MCP client"
    return {
        "id": f"{thread_id}:started",
        "type": "thread.started",
        "timestamp": call.started_at.isoformat(),
        "thread_id": thread_id,
        "parent_id": call.parent_id or session.parent_id,
        "mcp_id": call.answered_by,
        "session_id": session.id,
        "user_input": f"{call.mcp_id}__{call.tool}, called by {client} through {session.via}",
        "execution_context": _context(session),
    }


def _call_events(session: Session, call: Call, thread_id: str, sequence: int) -> list[dict[str, Any]]:
    """A call's tool_call and tool_result steps, at `sequence`, and its permission check."""
    when = call.started_at
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
            "timestamp": _ended_at(call).isoformat(),
            "thread_id": thread_id,
            "sequence": sequence + 1,
            "step_type": "tool_result",
            "description": f"{name}: {_verdict(call, denied)}",
            "details": _result_details(call),
            "status": "error" if call.failed else "complete",
            "duration_ms": round(call.duration_ms, 3),
        },
        _permission_check(session, call, thread_id, f"{thread_id}:{sequence}:permission"),
    ]


def _verdict(call: Call, denied: bool) -> str:
    if denied:
        return "denied"
    if call.outcome == "unknown":
        return "error, outcome unknown"
    return "error" if call.failed else "ok"


def _ended_at(call: Call) -> datetime:
    return datetime.fromtimestamp(call.started_at.timestamp() + call.duration_ms / 1000, UTC)


def _call_ended(call: Call, thread_id: str) -> dict[str, Any]:
    """The end of a call's own thread: in error when the call failed."""
    return {
        "id": f"{thread_id}:ended",
        "type": "thread.ended",
        "timestamp": _ended_at(call).isoformat(),
        "thread_id": thread_id,
        "status": "error" if call.failed else "complete",
    }


def _permission_check(session: Session, call: Call, thread_id: str, event_id: str) -> dict[str, Any]:
    decision = call.decision
    check: dict[str, Any] = {
        "id": event_id,
        "type": "permission.check",
        "timestamp": call.started_at.isoformat(),
        "thread_id": thread_id,
        "user_id": session.principal,
        "resource": f"{call.mcp_id}/{call.tool}",
    }
    if decision is None:  # a caller that decides nothing (no policy in force)
        return check | {
            "action": "execute",
            "granted": True,
            "reason": "no policy",
            "rules_checked": [],
            "inheritance_chain": [thread_id],
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
    if call.outcome is not None:
        details["outcome"] = call.outcome
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
