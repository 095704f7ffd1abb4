"""The policy check every routed call passes before it is forwarded (audit/policy.py),
with the permissions the call's thread declared (a Kiwi directive run's, kiwi/runs.py).

Shared by the aggregated server (`/mcp`, `mcp_proxy`), the REST tool call and the
WebSocket's call_tool command (`open_call`), so the paths cannot disagree. A parent's
ancestors are resolved once, on the first call naming it, and kept on the session: a later
call costs the rule evaluation alone.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.inheritance import ancestors
from audit.policy import Decision, Link, action_of, decide, policies
from mcps.endpoint.recorder import Call, CallRecorder, Session
from mcps.models import AGGREGATE_ID

PARENT_META_KEY = "mc/parent_thread_id"
THREAD_META_KEY = "mc/thread_id"
POLICY_META_KEY = "mc/policy"
MAX_PARENTS = 1000  # the ancestor chains a session keeps


async def authorize(
    recorder: CallRecorder,
    session: Session,
    mcp_id: str,
    tool: str,
    annotations: dict[str, Any] | None,
    thread_id: str,
    parent_id: str | None = None,
) -> Decision:
    """The verdict on calling `tool` on `mcp_id` in thread `thread_id` of `session`, child of
    `parent_id` (else of the session's parent), its ancestors included."""
    rules = await policies.arules()
    parent = parent_id or session.parent_id
    chain = session.ancestors.get(parent)
    if chain is None:
        if len(session.ancestors) >= MAX_PARENTS:  # a long session naming ever new parents
            session.ancestors.clear()
        chain = session.ancestors[parent] = await ancestors(parent, recorder.known, session.team_id)
    return decide(
        rules,
        [*chain, Link(thread_id, session.subject)],
        mcp_id,
        tool,
        action_of(annotations),
        session.declared,
    )


def parent_of(meta: Any) -> str | None:
    """The parent thread a request's `_meta` names, if any."""
    if not meta:
        return None
    value = meta.get(PARENT_META_KEY) if hasattr(meta, "get") else None
    return value if isinstance(value, str) and value else None


def denial_meta(decision: Decision, thread_id: str) -> dict[str, Any]:
    """The `_meta` of a denied call's result: enough for a program to tell why."""
    return {
        THREAD_META_KEY: thread_id,
        POLICY_META_KEY: {
            "granted": False,
            "reason": decision.reason,
            "rule": decision.rule.id if decision.rule is not None else None,
            "resource": decision.resource,
            "action": decision.action,
        },
    }


@dataclass
class DirectCall:
    """A call made from Mission Control's own surfaces (REST, the WebSocket), decided and
    recorded like a routed one: a thread of its own on the server called (a child of
    `parent` if given), ended with the call's outcome, the policy's verdict as its
    permission check."""

    recorder: CallRecorder
    key: tuple[str, ...]
    session: Session
    thread_id: str
    mcp_id: str
    tool: str
    arguments: dict[str, Any]
    decision: Decision
    started_at: datetime
    clock: float

    def record(
        self,
        result: dict[str, Any] | None = None,
        error: str = "",
        unknown_server: bool = False,
        outcome: str | None = None,
    ) -> None:
        """Record the call as it ended (a denied call: with the denial; `unknown_server`:
        the gateway knows no such server; `outcome` "unknown": it may or may not have run)."""
        elapsed = (time.perf_counter() - self.clock) * 1000
        call = Call(
            self.mcp_id,
            self.tool,
            self.arguments,
            self.started_at,
            elapsed,
            result,
            error,
            self.decision,
            self.thread_id,
            server=AGGREGATE_ID if unknown_server else "",
            outcome=outcome,
        )
        self.recorder.record(self.session, call)
        self.recorder.end(self.key)


async def open_call(
    recorder: CallRecorder,
    user: Any,
    mcp_id: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    via: str,
    parent: str | None = None,
) -> DirectCall:
    """Decide `user`'s call of `tool` on `mcp_id`; the caller forwards it only if granted,
    then calls `record()` with its outcome (a denied call: `record(error=denial_text())`)."""
    from asgiref.sync import sync_to_async

    from mcps.models import Tool
    from missioncontrol.authentication import principal_of

    principal = await sync_to_async(principal_of)(user)
    key = (via.lower(), uuid.uuid4().hex)
    session = recorder.session(
        key,
        via=via,
        principal=principal.name,
        client={"name": f"{via} API"},
        subject=principal.subject(),
        parent_id=parent,
        team_id=principal.team_id,
        user_id=principal.user_id,
        recorded=False,  # one call: no session to group
    )
    tools = Tool.objects.filter(server_id=mcp_id, name=tool)
    annotations = await tools.values_list("annotations", flat=True).afirst()
    started_at, clock = datetime.now(UTC), time.perf_counter()
    thread_id = session.thread_for_call()
    decision = await authorize(recorder, session, mcp_id, tool, annotations, thread_id)
    return DirectCall(recorder, key, session, thread_id, mcp_id, tool, arguments, decision, started_at, clock)
