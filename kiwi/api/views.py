"""REST under /api/kiwi/: workspaces and their indexed items, read-only (the files are the source)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kiwi.api.serializers import KiwiItemDetailSerializer, KiwiItemSerializer, KiwiWorkspaceSerializer
from kiwi.filtersets import KiwiItemFilterSet
from kiwi.graph import item_id
from kiwi.models import KiwiItem, KiwiWorkspace
from missioncontrol.listing import FilteredList
from missioncontrol.openapi import NOT_FOUND
from missioncontrol.pagination import Keyset


class WorkspaceList(APIView):
    @extend_schema(responses={200: KiwiWorkspaceSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = KiwiWorkspace.objects.annotate(
            item_count=Count("items"), broken_count=Count("items", filter=~Q(items__error=""))
        )
        return Response(KiwiWorkspaceSerializer(rows, many=True).data)


class ItemList(FilteredList):
    """Indexed items, last indexed first; `broken=true` lists the files that did not parse, with why."""

    filterset_class = KiwiItemFilterSet
    keyset = Keyset("indexed_at", default_limit=100, max_limit=1000)
    row_serializer = KiwiItemSerializer

    def get_queryset(self) -> QuerySet[KiwiItem]:
        return KiwiItem.objects.select_related("workspace")

    def row(self, obj: KiwiItem) -> dict[str, Any]:  # type: ignore[override]
        return obj.summary()


class ItemDetail(APIView):
    @extend_schema(responses={200: KiwiItemDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        item = get_object_or_404(KiwiItem.objects.select_related("workspace"), pk=pk)
        links = [
            {"kind": link.kind, "target": link.target, "target_kind": link.target_kind}
            for link in item.links.all()
        ]
        body = {**item.summary(), "description": item.description, "data": item.data, "links": links}
        return Response(body | {"entity": item_id(item)})
