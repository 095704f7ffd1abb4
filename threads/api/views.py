"""REST for threads: one thread's state, and its timeline.

The full query surface (lists with filters, transcript, children, search) is the query
issue's; these two read the same `Thread.state()` the WebSocket snapshot sends.
"""

from __future__ import annotations

from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from threads.models import Thread


class ThreadDetail(APIView):
    def get(self, request: Request, thread_id: str) -> Response:
        return Response(get_object_or_404(Thread, id=thread_id).state())


class ThreadTimeline(APIView):
    def get(self, request: Request, thread_id: str) -> Response:
        thread = get_object_or_404(Thread, id=thread_id)
        return Response([step.as_event() for step in thread.steps.all()])
