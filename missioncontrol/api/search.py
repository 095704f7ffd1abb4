"""`GET /api/search?q=...`: one query across every kind of stored row."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol import search
from missioncontrol.api.serializers import SearchResultsSerializer
from missioncontrol.openapi import FIELD_ERRORS

PARAMS = {"q", "kinds", "order", "limit"}


class Search(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="The text to search for."),
            OpenApiParameter(
                "kinds",
                {"type": "array", "items": {"type": "string", "enum": list(search.KINDS)}},
                style="form",
                explode=False,
                description="The kinds to search, comma-separated (all by default).",
            ),
            OpenApiParameter("order", str, enum=["rank", "time"], default="rank"),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ],
        responses={200: SearchResultsSerializer, 400: FIELD_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        problems: dict[str, list[str]] = {
            name: ["Unknown parameter."] for name in sorted(set(params) - PARAMS)
        }
        text = params.get("q", "").strip()
        if not text:
            problems["q"] = ["Give the text to search for."]
        kinds = [k.strip() for k in params.get("kinds", ",".join(search.KINDS)).split(",") if k.strip()]
        if not kinds or set(kinds) - set(search.KINDS):
            problems["kinds"] = [f"Give some of: {', '.join(search.KINDS)}."]
        order = params.get("order", "rank")
        if order not in ("rank", "time"):
            problems["order"] = ["Give rank or time."]
        try:
            limit = int(params.get("limit", 20))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            problems["limit"] = ["Give a whole number from 1 to 100."]
        if problems:
            raise ValidationError(problems)
        return Response(search.search(text, dict.fromkeys(kinds), order, limit, request.user))  # type: ignore[arg-type]
