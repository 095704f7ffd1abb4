"""REST for logs: the filtered, keyset-paged list, one log, and the streamed export."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logs import export as exporting
from logs.api.serializers import LogEventSerializer
from logs.filtersets import LogFilterSet
from logs.models import LogEntry
from missioncontrol.authentication import api_access
from missioncontrol.listing import FilteredList, filtered
from missioncontrol.openapi import NOT_FOUND
from missioncontrol.pagination import Keyset


class LogList(FilteredList):
    filterset_class = LogFilterSet
    keyset = Keyset("timestamp", default_limit=100, max_limit=1000)
    row_serializer = LogEventSerializer


class LogDetail(APIView):
    @extend_schema(responses={200: LogEventSerializer, 404: NOT_FOUND})
    def get(self, request: Request, log_id: str) -> Response:
        return Response(get_object_or_404(LogEntry.objects.visible_to(request.user), id=log_id).as_event())


class ExportFilterSet(LogFilterSet):
    allowed_extra = frozenset({"format"})


@require_GET
@api_access()
async def export(request: HttpRequest) -> HttpResponse:
    """`/api/logs/export?format=jsonl|csv&<log filters>`: every matching log, streamed."""
    fmt = request.GET.get("format", "jsonl")
    if fmt not in exporting.FORMATS:
        return JsonResponse({"format": [f"Give one of: {', '.join(exporting.FORMATS)}."]}, status=400)
    try:
        # visible_to reads the user's role and teams: a database read, so not on the loop.
        queryset = await sync_to_async(
            lambda: filtered(ExportFilterSet, LogEntry.objects.visible_to(request.user), request.GET)
        )()
    except ValidationError as exc:
        return JsonResponse(exc.detail, status=400)
    response = StreamingHttpResponse(exporting.stream(queryset, fmt), content_type=exporting.FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="logs-{stamp}.{fmt}"'
    return response
