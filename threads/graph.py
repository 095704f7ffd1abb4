"""Threads in the relationship graph: `child_of` their parent, `used` the tools they called.

Threads run to tens of thousands, so unlike the other kinds they are never read whole:
counting, paging, lookup and search are one query each, and each kind of edge is one
aggregate query (see missioncontrol/graph.py).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Count, F, Q, QuerySet, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Substr

from missioncontrol.graph import (
    CONTAINS,
    DESCRIPTION,
    EXACT,
    PREFIX,
    Edge,
    EdgeKind,
    Entity,
    EntityKind,
    Provider,
    edge,
    entity,
    node_id,
    split_id,
    tool_key,
)
from threads.models import ExecutionStep, Thread, ThreadQuerySet

DESCRIPTION_CHARS = 500
FIELDS = ("id", "status", "mcp_id", "parent_id", "started_at", "ended_at", "summary")


def _threads(user: Any) -> ThreadQuerySet:
    return Thread.objects.all() if user is None else Thread.objects.visible_to(user)


def _rows(user: Any) -> QuerySet[Thread, dict[str, Any]]:
    return _threads(user).annotate(summary=Substr("user_input", 1, DESCRIPTION_CHARS)).values(*FIELDS)


def _entity(row: dict[str, Any]) -> Entity:
    return entity(
        "thread",
        row["id"],
        row["id"],
        description=row["summary"],
        status=row["status"],
        mcp_id=row["mcp_id"],
        parent_id=row["parent_id"],
        started_at=row["started_at"].isoformat(),
        ended_at=row["ended_at"].isoformat() if row["ended_at"] else None,
    )


def tool_uses(user: Any = None) -> QuerySet[ExecutionStep]:
    """tool_call steps with the server and tool they called.

    Mission Control's recorder (mcps/endpoint/recorder.py) writes both into `details`;
    an agent pushing events may leave out the server, which is then the thread's own.
    """
    steps = ExecutionStep.objects.all() if user is None else ExecutionStep.objects.visible_to(user)
    return (
        steps.filter(step_type=ExecutionStep.StepType.TOOL_CALL, details__has_key="tool")
        .annotate(
            server=Coalesce(KT("details__mcp_id"), F("thread__mcp_id"), output_field=TextField()),
            # Cast: a bare key transform would compare as JSON, not as the text it holds.
            tool=Cast(KT("details__tool"), TextField()),
        )
        .filter(server__isnull=False, tool__isnull=False)
        .exclude(server="")
        .exclude(tool="")
    )


class ThreadProvider(Provider):
    entity_kinds = ("thread",)
    edge_kinds = ("child_of", "used")

    def count(self, kind: EntityKind) -> int:
        return _threads(self.graph.user).count()

    def page(self, kind: EntityKind, offset: int, limit: int) -> list[Entity]:
        return [
            _entity(r) for r in _rows(self.graph.user).order_by("-started_at", "id")[offset : offset + limit]
        ]

    def get(self, kind: EntityKind, entity_id: str) -> Entity | None:
        row = _rows(self.graph.user).filter(id=split_id(entity_id)[1]).first()
        return _entity(row) if row else None

    def search(self, kind: EntityKind, text: str, limit: int) -> tuple[int, list[tuple[int, Entity]]]:
        matches = _rows(self.graph.user).filter(Q(id__icontains=text) | Q(user_input__icontains=text))
        ranked = matches.annotate(
            rank=Case(
                When(id__iexact=text, then=Value(EXACT)),
                When(id__istartswith=text, then=Value(PREFIX)),
                When(id__icontains=text, then=Value(CONTAINS)),
                default=Value(DESCRIPTION),
            )
        ).order_by("rank", "id")[:limit]
        return matches.count(), [(r["rank"], _entity(r)) for r in ranked]

    def edges(self, kind: EdgeKind, touching: str | None) -> list[Edge]:
        at_kind, key = split_id(touching) if touching else (None, "")
        if kind == "child_of":
            if at_kind not in (None, "thread"):
                return []
            # A parent that has not arrived yet is no entity: its children wait for it.
            visible = _threads(self.graph.user)
            children = visible.filter(parent__in=visible.values("id"))
            if at_kind:
                children = children.filter(Q(id=key) | Q(parent_id=key))
            pairs = children.order_by("id").values_list("id", "parent_id")
            return [edge("child_of", node_id("thread", c), node_id("thread", p)) for c, p in pairs]
        uses = tool_uses(self.graph.user)
        if at_kind == "thread":
            uses = uses.filter(thread_id=key)
        elif at_kind == "tool":
            server, _, tool = key.partition("/")
            uses = uses.filter(server=server, tool=tool)
        elif at_kind is not None:
            return []
        counted = (
            uses.values("thread_id", "server", "tool")
            .annotate(weight=Count("id"))
            .order_by("thread_id", "server", "tool")
        )
        return [
            edge(
                "used",
                node_id("thread", u["thread_id"]),
                node_id("tool", tool_key(u["server"], u["tool"])),
                u["weight"],
            )
            for u in counted
        ]

    def references(self, kind: EntityKind) -> set[str]:
        if kind != "tool":
            return set()
        pairs = tool_uses(self.graph.user).order_by().values_list("server", "tool").distinct()
        return {node_id("tool", tool_key(server, tool)) for server, tool in pairs}
