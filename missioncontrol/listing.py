"""The shape every filtered REST list shares: validate the filters, page by keyset."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from django.http import QueryDict
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from missioncontrol.filters import StrictFilterSet
from missioncontrol.openapi import FilteredListSchema
from missioncontrol.pagination import Keyset
from missioncontrol.visibility import visible_rows


def filtered(
    filterset_class: type[StrictFilterSet], queryset: QuerySet[Any], data: QueryDict | dict[str, Any]
) -> QuerySet[Any]:
    """`queryset` narrowed by the filters in `data`; 400 naming each bad parameter."""
    filterset = filterset_class(data, queryset=queryset)
    problems = filterset.problems()
    if problems:
        raise ValidationError(problems)
    return filterset.qs


class FilteredList(APIView):
    """GET: `{"results", "next", "previous"}`, newest first, filtered by `filterset_class`."""

    filterset_class: ClassVar[type[StrictFilterSet]]
    keyset: ClassVar[Keyset]
    # The OpenAPI schema: the FilterSet's parameters and pages of `row_serializer` rows.
    row_serializer: ClassVar[type[Serializer[Any]]]
    schema = FilteredListSchema()

    def get_queryset(self) -> QuerySet[Any]:
        """The rows of the FilterSet's model, narrowed by URL arguments in a subclass;
        `get` shows only those the user may see (missioncontrol.visibility)."""
        return self.filterset_class._meta.model._default_manager.all()

    def row(self, obj: Model) -> dict[str, Any]:
        """The row as the WebSocket sends it."""
        return obj.as_event()  # type: ignore[attr-defined]

    def get(self, request: Request, **kwargs: Any) -> Response:
        rows = visible_rows(self.get_queryset(), request.user)
        queryset = filtered(self.filterset_class, rows, request.query_params)
        page = self.keyset.paginate(queryset, request)
        return Response(page.body([self.row(obj) for obj in page.rows]))
