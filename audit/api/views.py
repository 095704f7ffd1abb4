"""REST for the permission audit trail: every check, or one thread's, filtered."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from audit.api.serializers import PermissionCheckSerializer
from audit.filtersets import PermissionEventFilterSet
from audit.models import PermissionEvent
from missioncontrol.listing import FilteredList
from missioncontrol.pagination import Keyset
from threads.models import Thread


class PermissionAudit(FilteredList):
    filterset_class = PermissionEventFilterSet
    keyset = Keyset("timestamp", default_limit=100, max_limit=1000)
    row_serializer = PermissionCheckSerializer

    def get_queryset(self) -> QuerySet[PermissionEvent]:
        thread_id = self.kwargs.get("thread_id")
        if thread_id is None:
            return PermissionEvent.objects.all()
        if not Thread.objects.filter(id=thread_id).exists():
            raise Http404(f"No thread {thread_id!r}.")
        return PermissionEvent.objects.filter(thread_id=thread_id)
