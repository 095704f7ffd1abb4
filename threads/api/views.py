"""REST for threads: the filtered list, one thread's state, its timeline, transcript
and children. Rows are the same dicts the WebSocket sends (`summary`, `as_event`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.listing import FilteredList
from missioncontrol.openapi import NOT_FOUND
from missioncontrol.pagination import Keyset
from threads.api.serializers import (
    SessionDetailSerializer,
    SessionSerializer,
    ThreadMessageSerializer,
    ThreadStateSerializer,
    ThreadStepSerializer,
    ThreadSummarySerializer,
)
from threads.filtersets import SessionFilterSet, StepFilterSet, ThreadFilterSet
from threads.models import TIMELINE, ExecutionStep, Session, Thread

# A session's detail lists its latest threads; the thread list filtered by it has them all.
SESSION_THREADS = 50


class ThreadList(FilteredList):
    filterset_class = ThreadFilterSet
    keyset = Keyset("started_at", default_limit=50, max_limit=500)
    row_serializer = ThreadSummarySerializer

    def row(self, obj: Thread) -> dict[str, Any]:  # type: ignore[override]
        return obj.summary()


def visible_thread(request: Request, thread_id: str) -> Thread:
    """The thread, if the user may see it; 404 otherwise (another team's is "not found")."""
    return get_object_or_404(Thread.objects.visible_to(request.user), id=thread_id)


class ThreadDetail(APIView):
    @extend_schema(responses={200: ThreadStateSerializer, 404: NOT_FOUND})
    def get(self, request: Request, thread_id: str) -> Response:
        return Response(visible_thread(request, thread_id).state(request.user))


class ThreadTimeline(FilteredList):
    """A thread's steps by sequence, first first, a page at a time: `next` leads on, `previous`
    back. The thread's detail holds the first page and the cursor of the rest (`timeline_next`)."""

    filterset_class = StepFilterSet
    keyset = TIMELINE
    row_serializer = ThreadStepSerializer

    def get_queryset(self) -> QuerySet[ExecutionStep]:
        return visible_thread(self.request, self.kwargs["thread_id"]).steps.all()


class ThreadTranscript(APIView):
    @extend_schema(responses={200: ThreadMessageSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, thread_id: str) -> Response:
        thread = visible_thread(request, thread_id)
        return Response([message.as_event() for message in thread.messages.all()])


class ThreadChildren(APIView):
    @extend_schema(responses={200: ThreadSummarySerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, thread_id: str) -> Response:
        thread = visible_thread(request, thread_id)
        children = thread.children.visible_to(request.user).order_by("started_at", "id")
        return Response([child.summary() for child in children])


class SessionList(FilteredList):
    """Client sessions (an MCP client on /mcp or mcp_proxy), latest started first, with how
    many of their threads you may see and how many steps of those failed."""

    filterset_class = SessionFilterSet
    keyset = Keyset("started_at", default_limit=50, max_limit=500)
    row_serializer = SessionSerializer

    def get_queryset(self) -> QuerySet[Session]:
        user = self.request.user
        return Session.objects.visible_to(user).with_counts(Thread.objects.visible_to(user))

    def row(self, obj: Session) -> dict[str, Any]:  # type: ignore[override]
        return obj.summary()


class SessionDetail(APIView):
    @extend_schema(responses={200: SessionDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, session_id: str) -> Response:
        threads = Thread.objects.visible_to(request.user)
        sessions = Session.objects.visible_to(request.user).with_counts(threads)
        session = get_object_or_404(sessions, id=session_id)
        page = SESSION_THREADS + 1
        rows = list(threads.filter(session=session).order_by("-started_at", "-id")[:page])
        more = None
        if len(rows) == page:
            more = request.build_absolute_uri(f"{reverse('thread-list')}?session={quote(session.id)}")
        body = {
            **session.summary(),
            "threads": [t.summary() for t in rows[:SESSION_THREADS]],
            "threads_next": more,
        }
        return Response(body)
