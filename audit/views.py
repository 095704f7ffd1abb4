"""Pages of the permission audit: the checks through the API's FilterSet with escalations
on top (/permissions), and the compliance report (/permissions/compliance)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from audit.compliance import BadPeriod, ComplianceReport, compliance_report, period
from audit.filtersets import PermissionEventFilterSet
from audit.models import PermissionEvent
from missioncontrol.pages import list_page, visible
from missioncontrol.pagination import Keyset

ALERT_WINDOW = timedelta(hours=24)
CHART_HEIGHT = 160
CHART_BAR = 18
CHART_GAP = 6


def chart(report: ComplianceReport) -> dict[str, Any]:
    """Bars of checks per day (grants under denials) laid out for an inline SVG."""
    peak = max((d["checks"] for d in report.per_day), default=0) or 1
    bars = []
    for i, day in enumerate(report.per_day):
        granted = round(day["grants"] / peak * CHART_HEIGHT)
        denied = round(day["denials"] / peak * CHART_HEIGHT)
        x = i * (CHART_BAR + CHART_GAP)
        bars.append(
            {
                "x": x,
                "label_x": x + CHART_BAR / 2,
                "day": day["day"],
                "checks": day["checks"],
                "grants": day["grants"],
                "denials": day["denials"],
                "grant_y": CHART_HEIGHT - granted,
                "grant_h": granted,
                "deny_y": CHART_HEIGHT - granted - denied,
                "deny_h": denied,
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "width": max(len(bars) * (CHART_BAR + CHART_GAP), CHART_BAR),
        "height": CHART_HEIGHT,
        "bar": CHART_BAR,
    }


@login_required
def compliance_page(request: HttpRequest) -> HttpResponse:
    start_text, end_text = request.GET.get("from") or None, request.GET.get("to") or None
    try:
        start, end = period(start_text, end_text)
    except BadPeriod as exc:
        context = {"error": f"{exc.field}: {exc.reason}", "from": start_text or "", "to": end_text or ""}
        return render(request, "audit/compliance.html", context, status=400)
    report = compliance_report(start, end, user=request.user)
    query = {"from": start.isoformat(), "to": end.isoformat()}
    export = reverse("permission-compliance")
    context = {
        "report": report,
        "chart": chart(report),
        "from": start.date().isoformat(),
        "to": end.date().isoformat(),
        "csv_url": f"{export}?{urlencode({**query, 'format': 'csv'})}",
        "json_url": f"{export}?{urlencode({**query, 'format': 'json'})}",
    }
    return render(request, "audit/compliance.html", context)


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
