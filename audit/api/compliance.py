"""`GET /api/permissions/compliance?from=&to=&format=json|csv`: the compliance report.

A plain view, as the log export is: DRF would read `format` as its own renderer switch.
Like it, it needs a session or a bearer token and a role that reads (`api_access`), and
counts only the checks the caller may see (its teams'; every team's for an admin).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from audit.compliance import BadPeriod, ComplianceReport, compliance_report, period
from missioncontrol.authentication import api_access
from missioncontrol.jsontext import dumps

FORMATS = ("json", "csv")
PARAMETERS = frozenset({"from", "to", "format"})


def report_for(request: HttpRequest) -> ComplianceReport | JsonResponse:
    """The report the query asks for, or the 400 that says what is wrong with it."""
    unknown = sorted(set(request.GET) - PARAMETERS)
    if unknown:
        return JsonResponse(
            {name: ["unknown parameter; expected from, to, format"] for name in unknown}, status=400
        )
    try:
        start, end = period(request.GET.get("from") or None, request.GET.get("to") or None)
    except BadPeriod as exc:
        return JsonResponse({exc.field: [exc.reason]}, status=400)
    return compliance_report(start, end, user=request.user)


@api_access()
async def compliance(request: HttpRequest) -> HttpResponse:
    """Checks, grants and denials by subject and resource, top denials, escalations, per day."""
    if request.method != "GET":
        return JsonResponse({"method": ["use GET"]}, status=405, headers={"Allow": "GET"})
    fmt = request.GET.get("format", "json")
    if fmt not in FORMATS:
        return JsonResponse({"format": [f"expected one of {', '.join(FORMATS)}"]}, status=400)
    report = await sync_to_async(report_for)(request)
    if isinstance(report, JsonResponse):
        return report
    name = f"compliance-{report.start.date().isoformat()}-{report.end.date().isoformat()}"
    if fmt == "csv":
        response = HttpResponse(report.as_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    return HttpResponse(dumps(report.as_dict()), content_type="application/json")
