"""Thread pages: the filtered list (the API's FilterSet), the Thread Inspector, and the
client sessions that group threads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from audit.models import PermissionEvent
from missioncontrol.pages import list_page, visible
from missioncontrol.pagination import Keyset
from threads.filtersets import SessionFilterSet, ThreadFilterSet
from threads.models import Session, Thread

# The inspector's child tree stops here; a thread with more descendants links to the list.
MAX_TREE = 200


@login_required
def thread_list(request: HttpRequest) -> HttpResponse:
    page = list_page(
        request,
        "threads",
        ThreadFilterSet,
        Thread.objects.select_related("mcp"),
        Keyset("started_at", default_limit=50, max_limit=500),
    )
    context = {"page": page, "statuses": Thread.Status.values}
    return render(request, "threads/list.html", context)


def descendants(request: HttpRequest, root: Thread) -> list[dict[str, Any]]:
    """The tree under `root` as nested {thread, children}, breadth first, at most MAX_TREE."""
    nodes: dict[str, dict[str, Any]] = {root.id: {"thread": root, "children": []}}
    level = [root.id]
    while level and len(nodes) < MAX_TREE:
        rows = visible(request, Thread.objects.filter(parent_id__in=level)).order_by("started_at", "id")
        level = []
        for child in rows[: MAX_TREE - len(nodes)]:
            if child.id in nodes:  # a cycle in reported parents: show each thread once
                continue
            nodes[child.id] = {"thread": child, "children": []}
            nodes[child.parent_id]["children"].append(nodes[child.id])
            level.append(child.id)
    return nodes[root.id]["children"]


@login_required
def thread_page(request: HttpRequest, thread_id: str) -> HttpResponse:
    """The Thread Inspector: state from the database first, then live over /ws/."""
    thread = visible(request, Thread.objects.select_related("mcp", "session")).filter(id=thread_id).first()
    if thread is None:
        raise Http404(f"No thread {thread_id!r}")
    parent = None
    if thread.parent_id:
        parent = visible(request, Thread.objects.filter(id=thread.parent_id)).first()
    checks = visible(request, PermissionEvent.objects.filter(thread_id=thread.id))
    permissions = checks.order_by("-timestamp")[:200]
    context = {
        "thread": thread,
        "parent": parent,
        "tree": descendants(request, thread),
        "state": thread.state(),
        "permissions": [p.as_event() for p in reversed(list(permissions))],
    }
    return render(request, "threads/detail.html", context)


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    page = list_page(
        request,
        "sessions",
        SessionFilterSet,
        Session.objects.with_counts(visible(request, Thread.objects.all())),
        Keyset("started_at", default_limit=50, max_limit=500),
    )
    return render(request, "threads/sessions.html", {"page": page})


@login_required
def session_page(request: HttpRequest, session_id: str) -> HttpResponse:
    """A session: who it is, and its threads, a page at a time (the thread list's)."""
    threads = visible(request, Thread.objects.all())
    session = visible(request, Session.objects.with_counts(threads)).filter(id=session_id).first()
    if session is None:
        raise Http404(f"No session {session_id!r}")
    page = list_page(
        request,
        "session-threads",
        ThreadFilterSet,
        Thread.objects.filter(session=session).select_related("mcp"),
        Keyset("started_at", default_limit=50, max_limit=500),
    )
    return render(request, "threads/session.html", {"session": session, "page": page})
