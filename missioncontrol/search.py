"""One query across everything Mission Control stores: `/api/search`.

Each kind answers from its own table with its own full-text match (logs, transcripts,
steps and thread inputs by GIN-indexed websearch on PostgreSQL; the short columns of
permission checks, tools, directives, knowledge and Kiwi items by LIKE); the results are merged,
each typed by its kind, ordered by relevance (each kind's scores scaled to its best
hit) or by time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from django.db import connection
from django.db.models import Model, QuerySet

from audit.models import PermissionEvent
from automations.models import Directive, KnowledgeEntry
from kiwi.models import KiwiItem
from logs.models import LogEntry
from mcps.models import Tool
from missioncontrol import textsearch
from missioncontrol.visibility import visible_rows
from threads.models import ExecutionStep, LLMMessage, Thread

Order = Literal["rank", "time"]
# Counting every match of a common word over millions of logs is the slow part of a
# search; past this many a kind says "at least".
COUNT_CAP = 1000
# On SQLite relevance is scored in Python over this many newest matches per kind.
SQLITE_CANDIDATES = 200


@dataclass
class Hit:
    kind: str
    id: str
    title: str
    snippet: str
    timestamp: datetime | None
    thread_id: str | None
    url: str
    rank: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        body["rank"] = round(self.rank, 4)
        return body


@dataclass(frozen=True)
class Kind:
    """How one kind of row is found (`find`), scored (`text_field`) and shown (`hit`)."""

    find: Callable[[str], QuerySet[Any]]
    text_field: str
    time_field: str
    hit: Callable[[Any], Hit]
    full_text: bool  # matched by the GIN-indexed websearch lookup on PostgreSQL


def _like(model: type[Model], fields: list[str]) -> Callable[[str], QuerySet[Any]]:
    def find(text: str) -> QuerySet[Any]:
        q = textsearch.matches_any(fields, text)
        return model._default_manager.none() if q is None else model._default_manager.filter(q)

    return find


def _snip(text: str, size: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _thread_title(thread: Thread) -> str:
    """Its id and how it went: its own status, and its failed steps if any."""
    failed = f", {thread.error_count} failed step{'s' if thread.error_count != 1 else ''}"
    return f"{thread.id} ({thread.status}{failed if thread.error_count else ''})"


KINDS: dict[str, Kind] = {
    "thread": Kind(
        Thread.objects.search,
        "user_input",
        "started_at",
        lambda t: Hit(
            "thread", t.id, _thread_title(t), _snip(t.user_input), t.started_at, t.id, f"/api/threads/{t.id}"
        ),
        True,
    ),
    "log": Kind(
        LogEntry.objects.search,
        "message",
        "timestamp",
        lambda r: Hit(
            "log",
            r.id,
            f"{r.level} {r.service}",
            _snip(r.message),
            r.timestamp,
            r.thread_id,
            f"/api/logs/{r.id}",
        ),
        True,
    ),
    "message": Kind(
        LLMMessage.objects.search,
        "content",
        "timestamp",
        lambda m: Hit(
            "message",
            m.id,
            f"{m.role} in {m.thread_id}",
            _snip(m.content),
            m.timestamp,
            m.thread_id,
            f"/api/threads/{m.thread_id}/transcript",
        ),
        True,
    ),
    "step": Kind(
        ExecutionStep.objects.search,
        "description",
        "timestamp",
        lambda s: Hit(
            "step",
            f"{s.thread_id}#{s.sequence}",
            f"{s.step_type} in {s.thread_id}"
            + (" (failed)" if s.status == ExecutionStep.Status.ERROR else ""),
            _snip(s.description),
            s.timestamp,
            s.thread_id,
            f"/api/threads/{s.thread_id}/timeline",
        ),
        True,
    ),
    "permission": Kind(
        _like(PermissionEvent, ["resource", "reason", "user_id"]),
        "resource",
        "timestamp",
        lambda p: Hit(
            "permission",
            p.id,
            f"{p.user_id} {p.action} {p.resource}: {'granted' if p.granted else 'denied'}",
            _snip(p.reason),
            p.timestamp,
            p.thread_id,
            f"/api/permissions/audit/{p.thread_id}",
        ),
        False,
    ),
    "tool": Kind(
        _like(Tool, ["name", "title", "description"]),
        "name",
        "updated_at",
        lambda t: Hit(
            "tool",
            f"{t.server_id}/{t.name}",
            f"{t.server_id}__{t.name}",
            _snip(t.description),
            t.updated_at,
            None,
            f"/api/mcps/{t.server_id}/tools",
        ),
        False,
    ),
    "directive": Kind(
        _like(Directive, ["name", "description"]),
        "name",
        "updated_at",
        lambda d: Hit(
            "directive",
            d.name,
            d.name,
            _snip(d.description),
            d.updated_at,
            None,
            f"/api/graph/relationships?entity=directive:{d.name}",
        ),
        False,
    ),
    "knowledge": Kind(
        _like(KnowledgeEntry, ["title", "content"]),
        "title",
        "updated_at",
        lambda k: Hit(
            "knowledge",
            k.slug,
            k.title,
            _snip(k.content),
            k.updated_at,
            None,
            f"/api/graph/relationships?entity=knowledge:{k.slug}",
        ),
        False,
    ),
    # Kiwi workspaces' directives, tools and knowledge (the files that parsed).
    "kiwi": Kind(
        lambda text: (
            _like(KiwiItem, ["name", "title", "description"])(text).valid().select_related("workspace")
        ),
        "name",
        "indexed_at",
        lambda i: Hit(
            "kiwi",
            f"{i.workspace.name}/{i.kind}/{i.name}",
            f"Kiwi {i.kind} {i.name}" + (f" {i.version}" if i.version else ""),
            _snip(i.title + " " + i.description if i.title != i.name else i.description),
            i.indexed_at,
            None,
            f"/api/kiwi/items/{i.pk}",
        ),
        False,
    ),
}


def _ranked(kind: Kind, qs: QuerySet[Any], text: str, limit: int) -> list[Hit]:
    if kind.full_text and connection.vendor == "postgresql":
        rows = qs.annotate(_rank=textsearch.Rank(kind.text_field, text)).order_by(
            "-_rank", f"-{kind.time_field}"
        )
        hits = []
        for row in rows[:limit]:
            hit = kind.hit(row)
            hit.rank = row._rank
            hits.append(hit)
        return _scaled(hits)
    candidates = list(qs.order_by(f"-{kind.time_field}")[: max(limit, SQLITE_CANDIDATES)])
    scored = []
    for row in candidates:
        hit = kind.hit(row)
        hit.rank = textsearch.score(str(getattr(row, kind.text_field)), text)
        scored.append(hit)
    scored.sort(key=lambda h: h.rank, reverse=True)
    return scored[:limit]


# ts_rank has no fixed scale, so a kind's PostgreSQL ranks are scaled to its best hit,
# which scores this; the absolute scores (textsearch.score) keep 1.0 for an exact match.
FULL_TEXT_BEST = 0.9


def _scaled(hits: list[Hit]) -> list[Hit]:
    best = max((h.rank for h in hits), default=0.0)
    for hit in hits:
        hit.rank = FULL_TEXT_BEST * hit.rank / best if best > 0 else 0.0
    return hits


def search(text: str, kinds: Iterable[str], order: Order, limit: int, user: Any) -> dict[str, Any]:
    """Up to `limit` hits across `kinds`, merged by `order`, with each kind's match count.

    Every kind holds only the rows `user` may see (missioncontrol.visibility); None
    (Mission Control itself, no user) sees everything.
    """
    counts: dict[str, int] = {}
    more: list[str] = []
    hits: list[Hit] = []
    for name in kinds:
        kind = KINDS[name]
        qs = kind.find(text)
        if user is not None:
            qs = visible_rows(qs, user)
        counts[name] = qs[: COUNT_CAP + 1].count()
        if counts[name] > COUNT_CAP:
            counts[name] = COUNT_CAP
            more.append(name)
        if not counts[name]:
            continue
        if order == "rank":
            hits += _ranked(kind, qs, text, limit)
        else:
            hits += [kind.hit(row) for row in qs.order_by(f"-{kind.time_field}")[:limit]]

    def when(hit: Hit) -> float:
        return hit.timestamp.timestamp() if hit.timestamp else float("-inf")

    if order == "rank":
        hits.sort(key=lambda h: (h.rank, when(h)), reverse=True)
    else:
        hits.sort(key=when, reverse=True)
    return {
        "query": text,
        "order": order,
        "counts": counts,
        "more": more,
        "results": [hit.as_dict() for hit in hits[:limit]],
    }
