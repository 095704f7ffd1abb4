"""REST for the relationship graph: entities, relationships, search (see missioncontrol/graph.py).

Every list answers {"count", "results"}. A bad or unknown parameter answers 400 naming
it, like every other list: {"limit": ["..."]}; an unknown entity is a 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.api.serializers import GraphEdgeListSerializer, GraphEntityListSerializer
from missioncontrol.graph import EDGE_KINDS, ENTITY_KINDS, Graph, split_id
from missioncontrol.openapi import FIELD_ERRORS, NOT_FOUND

MAX_LIMIT = 10_000
MAX_SEARCH_LIMIT = 500


class KindsField(serializers.Field):
    """`kind=server,tool` (or `kind=server&kind=tool`): a subset of `choices`, all if absent."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        self.choices = choices
        super().__init__(required=False, default=choices, **kwargs)

    def get_value(self, dictionary: Any) -> Any:
        values = dictionary.getlist(self.field_name) if hasattr(dictionary, "getlist") else []
        return ",".join(values) if values else empty

    def to_internal_value(self, data: Any) -> tuple[str, ...]:
        kinds = tuple(k.strip() for k in str(data).split(",") if k.strip())
        for kind in kinds:
            if kind not in self.choices:
                raise serializers.ValidationError(
                    f"unknown kind {kind!r}; expected one of {', '.join(self.choices)}"
                )
        return kinds or self.choices


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=1000)
    offset = serializers.IntegerField(min_value=0, default=0)


class EntityParams(PageParams):
    kind = KindsField(ENTITY_KINDS)


class RelationshipParams(PageParams):
    kind = KindsField(EDGE_KINDS)
    entity = serializers.CharField(required=False, default=None)

    def validate_entity(self, value: str | None) -> str | None:
        if value is not None:
            try:
                split_id(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value


class SearchParams(serializers.Serializer):
    q = serializers.CharField()
    kind = KindsField(ENTITY_KINDS)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_SEARCH_LIMIT, default=50)


def _params(params: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    checked = params(data=request.query_params)
    problems = {} if checked.is_valid() else dict(checked.errors)
    for name in sorted(set(request.query_params) - set(checked.fields)):
        problems[name] = ["Unknown parameter."]
    if problems:
        raise ValidationError(problems)
    return dict(checked.validated_data)


class Entities(APIView):
    @extend_schema(parameters=[EntityParams], responses={200: GraphEntityListSerializer, 400: FIELD_ERRORS})
    def get(self, request: Request) -> Response:
        p = _params(EntityParams, request)
        count, results = Graph(user=request.user).entities(p["kind"], p["offset"], p["limit"])
        return Response({"count": count, "results": results})


class Relationships(APIView):
    @extend_schema(
        parameters=[RelationshipParams],
        responses={200: GraphEdgeListSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        p = _params(RelationshipParams, request)
        graph = Graph(user=request.user)
        if p["entity"] is not None and graph.get(p["entity"]) is None:
            raise NotFound(f"No entity {p['entity']!r}.")
        count, results = graph.relationships(p["kind"], p["entity"], p["offset"], p["limit"])
        return Response({"count": count, "results": results})


class Search(APIView):
    @extend_schema(parameters=[SearchParams], responses={200: GraphEntityListSerializer, 400: FIELD_ERRORS})
    def get(self, request: Request) -> Response:
        p = _params(SearchParams, request)
        count, results = Graph(user=request.user).search(p["q"], p["kind"], p["limit"])
        return Response({"count": count, "results": results})
