"""REST for logs: the filtered, keyset-paged list, one log, and the streamed export."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logs import archive
from logs import export as exporting
from logs.api.serializers import LogEventSerializer
from logs.filtersets import LogFilterSet
from logs.models import LogEntry
from missioncontrol.authentication import api_access
from missioncontrol.listing import FilteredList, filtered
from missioncontrol.openapi import NOT_FOUND, FilteredListSchema
from missioncontrol.pagination import Keyset
from missioncontrol.roles import team_scope


class LogListSchema(FilteredListSchema):
    def get_override_parameters(self) -> list[Any]:
        archived = OpenApiParameter(
            "archived",
            bool,
            description=(
                "true: read archived days (log retention) instead of the database, between `from` and "
                "`to` (both required, at most 31 days apart); rows carry `archived: true`; no cursor."
            ),
        )
        return [*super().get_override_parameters(), archived]


class LogList(FilteredList):
    filterset_class = LogFilterSet
    keyset = Keyset("timestamp", default_limit=100, max_limit=1000)
    row_serializer = LogEventSerializer
    schema = LogListSchema()

    def get(self, request: Request, **kwargs: Any) -> Response:
        archived = request.query_params.get("archived")
        if archived is None:
            return super().get(request, **kwargs)
        if archived not in ("true", "false"):
            raise ValidationError({"archived": ["Give true or false."]})
        params = request.query_params.copy()
        del params["archived"]
        if archived == "false":
            request._request.GET = params  # the hot table, as without the parameter
            return super().get(Request(request._request), **kwargs)
        return Response(ArchivedLogs.from_params(params).page(request.user))


class ArchivedLogs:
    """`GET /api/logs?archived=true&from=..&to=..`: archived days read on request, newest first.

    The FilterSet validates the parameters; the archive rows are matched in Python on
    threads, mcps, levels, services and search (every word in the message, ignoring case).
    Rows carry `"archived": true`. One page (limit, at most 1,000) and no cursor.
    """

    MAX_DAYS = 31

    def __init__(self, cleaned: dict[str, Any], limit: int) -> None:
        self.cleaned, self.limit = cleaned, limit

    @classmethod
    def from_params(cls, params: Any) -> ArchivedLogs:
        filterset = LogFilterSet(params, queryset=LogEntry.objects.none())
        problems = filterset.problems()
        for name in ("since", "cursor"):
            if name in params:
                problems[name] = ["Not with archived=true: give from and to."]
        cleaned = filterset.form.cleaned_data if not problems else {}
        first = cleaned.get("from") or cleaned.get("from_timestamp")
        last = cleaned.get("to") or cleaned.get("to_timestamp")
        if not problems and (first is None or last is None):
            problems["from" if first is None else "to"] = ["Required with archived=true."]
        if not problems and last < first:
            problems["to"] = ["Before from."]
        if not problems and (last - first).days >= cls.MAX_DAYS:
            problems["to"] = [f"At most {cls.MAX_DAYS} days after from with archived=true."]
        try:
            limit = int(params.get("limit", 100))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            problems["limit"] = ["Give an integer from 1 to 1000."]
        if problems:
            raise ValidationError(problems)
        return cls({**cleaned, "from": first, "to": last}, limit)

    def matches(self, row: dict[str, Any]) -> bool:
        c = self.cleaned
        for name, key in (("threads", "thread_id"), ("mcps", "mcp_id"), ("services", "service")):
            if c.get(name) and row.get(key) not in c[name]:
                return False
        if c.get("levels") and row.get("level") not in c["levels"]:
            return False
        message = (row.get("message") or "").lower()
        return all(word in message for word in (c.get("search") or "").lower().split())

    def page(self, user: Any) -> dict[str, Any]:
        """The page `user` may see: its teams' archived logs (LogEntry.visible_to)."""
        mcps = self.cleaned.get("mcps") or None
        found = archive.read(self.cleaned["from"], self.cleaned["to"], mcps, team_scope(user))
        rows = [r for r in found if self.matches(r)]
        rows.sort(key=lambda r: (r["timestamp"], r["id"]), reverse=True)
        return {"results": rows[: self.limit], "next": None, "previous": None}


class LogDetail(APIView):
    @extend_schema(responses={200: LogEventSerializer, 404: NOT_FOUND})
    def get(self, request: Request, log_id: str) -> Response:
        return Response(get_object_or_404(LogEntry.objects.visible_to(request.user), id=log_id).as_event())


class ExportFilterSet(LogFilterSet):
    allowed_extra = frozenset({"format"})


@require_GET
@api_access()
async def export(request: HttpRequest) -> HttpResponse:
    """`/api/logs/export?format=jsonl|json|csv&<log filters>`: every matching log, streamed."""
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
