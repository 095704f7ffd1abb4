"""The thread chain a routed call inherits its grants from: root first, the call's own thread last.

How a call names its thread's parent:
- on `/mcp` and through `mcp_proxy`, the `_meta` of a `tools/call` request may carry
  `mc/parent_thread_id`; the agent's session (its thread) becomes a child of that thread.
  Every routed result carries `_meta["mc/thread_id"]`, the thread it was recorded on, so
  an agent can hand it to the sub-agents it starts. One client session naming two
  different parents is recorded as two threads, one under each.
- on `POST /api/mcps/{id}/tools/{tool}/call`, the body's `parent_thread_id`.
- pushed threads name theirs in `thread.started.parent_id`.

An ancestor's subject is what its thread was recorded with (`execution_context.subject`,
else its `principal` as a user). An ancestor Mission Control has never seen counts as the
anonymous subject, so naming an unknown parent grants nothing that anonymous lacks. So
does a thread of another team than the caller's (no team counts as one, as at ingest):
a caller learns nothing of another team's thread (its subject, the policies' verdict on
it) by naming it as a parent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from audit.policy import ANONYMOUS, Link, Subject
from threads.models import Thread

MAX_DEPTH = 32  # a cycle or a pathological tree stops here

# thread id -> (its parent id, its subject, its team), for threads this process knows in memory.
LocalLookup = Callable[[str], tuple[str | None, Subject, int | None] | None]
# `ancestors(team=...)` for a caller of any team (tests; Mission Control's own reads).
ANY_TEAM: Any = object()


def _stored(thread_id: str) -> tuple[str | None, Subject, int | None] | None:
    close_old_connections()
    try:
        row = Thread.objects.filter(id=thread_id).values("parent_id", "execution_context", "team_id").first()
    finally:
        close_old_connections()
    if row is None:
        return None
    return row["parent_id"], Subject.of_thread(row["execution_context"]), row["team_id"]


async def ancestors(
    parent_id: str | None, local: LocalLookup | None = None, team: int | None = ANY_TEAM
) -> list[Link]:
    """The ancestors of a thread whose parent is `parent_id`, root first, as a caller of
    `team` (its session's: None for no team) may know them: the walk stops at a thread of
    another team, which counts as unknown (anonymous)."""
    links: list[Link] = []
    seen: set[str] = set()
    current = parent_id
    while current and current not in seen and len(links) < MAX_DEPTH:
        seen.add(current)
        found = local(current) if local is not None else None
        if found is None:
            found = await sync_to_async(_stored, thread_sensitive=False)(current)
        if found is None or (team is not ANY_TEAM and found[2] != team):
            links.append(Link(current, ANONYMOUS))
            break
        parent, subject, _team = found
        links.append(Link(current, subject))
        current = parent
    links.reverse()
    return links
