"""REST for LLM usage: tokens and cost over a window, grouped, with a series over time."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.openapi import FIELD_ERRORS
from usage.api.serializers import UsageParams, UsageReportSerializer
from usage.models import LLMUsage
from usage.report import WINDOWS, report


class UsageReport(APIView):
    @extend_schema(parameters=[UsageParams], responses={200: UsageReportSerializer, 400: FIELD_ERRORS})
    def get(self, request: Request) -> Response:
        """Tokens and cost of the LLM calls of the threads you may see, over `window`: totals,
        the costliest groups (`group_by`), and tokens and cost per bucket of time."""
        checked = UsageParams(data=request.query_params)
        problems = {} if checked.is_valid() else dict(checked.errors)
        for name in sorted(set(request.query_params) - set(checked.fields)):
            problems[name] = ["Unknown parameter."]
        if problems:
            raise ValidationError(problems)
        p = checked.validated_data
        rows = LLMUsage.objects.visible_to(request.user)
        return Response(report(rows, WINDOWS[p["window"]], p["group_by"], limit=p["limit"]))
