"""The permission audit page: checks through the API's FilterSet, escalations on top."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.filtersets import PermissionEventFilterSet
from audit.models import PermissionEvent
from missioncontrol.pages import list_page, visible
from missioncontrol.pagination import Keyset

ALERT_WINDOW = timedelta(hours=24)


@login_required
def audit_page(request: HttpRequest) -> HttpResponse:
    page = list_page(
        request,
        "permissions",
        PermissionEventFilterSet,
        PermissionEvent.objects.all(),
        Keyset("timestamp", default_limit=100),
    )
    recent = visible(request, PermissionEvent.objects.filter(timestamp__gte=timezone.now() - ALERT_WINDOW))
    escalations = recent.filter(escalation_detected=True).order_by("-timestamp")
    context = {
        "page": page,
        "actions": PermissionEvent.Action.values,
        "severities": PermissionEvent.Severity.values,
        "escalations": escalations[:10],
        "escalation_count": escalations.count(),
        "denied_count": recent.filter(granted=False).count(),
    }
    return render(request, "audit/list.html", context)
