"""REST for threads: the filtered list, one thread's state, its timeline, transcript
and children. Rows are the same dicts the WebSocket sends (`summary`, `as_event`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.listing import FilteredList
from missioncontrol.openapi import NOT_FOUND
from missioncontrol.pagination import Keyset
from threads.api.serializers import (
    ThreadMessageSerializer,
    ThreadStateSerializer,
    ThreadStepSerializer,
    ThreadSummarySerializer,
)
from threads.filtersets import ThreadFilterSet
from threads.models import Thread


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


class ThreadTimeline(APIView):
    @extend_schema(responses={200: ThreadStepSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, thread_id: str) -> Response:
        thread = visible_thread(request, thread_id)
        return Response([step.as_event() for step in thread.steps.all()])


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
