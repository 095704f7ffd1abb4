"""The policy check every routed call passes before it is forwarded (audit/policy.py).

Shared by the aggregated server (`/mcp`, `mcp_proxy`) and the REST tool call, so the
three paths cannot disagree. The session's ancestors are resolved once, on its first
call, and kept on the session: a later call costs the rule evaluation alone.
"""

from __future__ import annotations

from typing import Any

from audit.inheritance import ancestors
from audit.policy import Decision, Link, action_of, decide, policies
from mcps.endpoint.recorder import CallRecorder, Session

PARENT_META_KEY = "mc/parent_thread_id"
THREAD_META_KEY = "mc/thread_id"
POLICY_META_KEY = "mc/policy"


async def authorize(
    recorder: CallRecorder, session: Session, mcp_id: str, tool: str, annotations: dict[str, Any] | None
) -> Decision:
    """The verdict on calling `tool` on `mcp_id` in `session`'s thread, its ancestors included."""
    rules = await policies.arules()
    if session.ancestors is None:
        session.ancestors = await ancestors(session.parent_id, recorder.known)
    chain = [*session.ancestors, Link(session.thread_id, session.subject)]
    return decide(rules, chain, mcp_id, tool, action_of(annotations))


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
