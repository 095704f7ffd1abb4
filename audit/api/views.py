"""REST for the permission audit trail (every check, or one thread's) and the access audit."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from audit.api.serializers import AccessEventSerializer, PermissionCheckSerializer
from audit.filtersets import AccessEventFilterSet, PermissionEventFilterSet
from audit.models import PermissionEvent
from missioncontrol import roles
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
        if not Thread.objects.visible_to(self.request.user).filter(id=thread_id).exists():
            raise Http404(f"No thread {thread_id!r}.")
        return PermissionEvent.objects.filter(thread_id=thread_id)


class AccessAudit(FilteredList):
    """Who signed in, used a token or ran a command: admins only."""

    filterset_class = AccessEventFilterSet
    keyset = Keyset("timestamp", default_limit=100, max_limit=1000)
    row_serializer = AccessEventSerializer
    read_permission = roles.VIEW_ACCESS_AUDIT
