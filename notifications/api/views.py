"""REST under /api/notifications/: channels, their test button, their delivery history.

Team-scoped like every list: a user sees the channels of its teams (admins every one,
global ones included) and their deliveries; target URLs are whole for admins only.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.listing import FilteredList
from missioncontrol.openapi import FIELD_ERRORS, FORBIDDEN, NOT_FOUND
from missioncontrol.pagination import Keyset
from notifications import dispatch
from notifications.api.serializers import ChannelSerializer, DeliverySerializer, TestResultSerializer
from notifications.filtersets import DeliveryFilterSet
from notifications.models import TEST_CHANNEL, VIEW_CHANNEL, Channel, Delivery

_CHANNEL = {200: ChannelSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN, 404: NOT_FOUND}
_WRITES = {"POST": "notifications.add_channel", "DELETE": "notifications.delete_channel"}


def visible_channel(request: Request, pk: int) -> Channel:
    return get_object_or_404(Channel.objects.visible_to(request.user), pk=pk)


@extend_schema_view(
    list=extend_schema(responses={200: ChannelSerializer(many=True)}),
    create=extend_schema(responses={201: ChannelSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN}),
    retrieve=extend_schema(responses={200: ChannelSerializer, 404: NOT_FOUND}),
    update=extend_schema(responses=_CHANNEL),
    partial_update=extend_schema(responses=_CHANNEL),
    destroy=extend_schema(responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND}),
)
class ChannelViewSet(viewsets.ModelViewSet[Channel]):
    """Notification channels: a team's (or the global) Apprise targets and their rules."""

    serializer_class = ChannelSerializer
    pagination_class = None
    read_permission = VIEW_CHANNEL

    @property
    def write_permission(self) -> str:
        return _WRITES.get(self.request.method or "", "notifications.change_channel")

    def get_queryset(self) -> QuerySet[Channel]:
        return Channel.objects.visible_to(self.request.user).select_related("team")


class ChannelTest(APIView):
    """Send the channel a test message now and answer how it went (one attempt, no retry)."""

    read_permission = VIEW_CHANNEL
    write_permission = TEST_CHANNEL

    @extend_schema(request=None, responses={200: TestResultSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND})
    def post(self, request: Request, pk: int) -> Response:
        channel = visible_channel(request, pk)
        if not channel.targets:
            raise ValidationError({"targets": ["the channel has no targets to test"]})
        delivery = dispatch.send_test(channel)
        body: dict[str, Any] = {
            "ok": delivery.status == Delivery.Status.SENT,
            "outcome": delivery.outcome_text(),
            "delivery": DeliverySerializer(delivery).data,
        }
        return Response(body)


class DeliveryList(FilteredList):
    """A channel's delivery history, newest first: each message with its attempts and errors."""

    filterset_class = DeliveryFilterSet
    keyset = Keyset("created_at", default_limit=50, max_limit=500)
    row_serializer = DeliverySerializer
    read_permission = "notifications.view_delivery"

    def get_queryset(self) -> QuerySet[Delivery]:
        channel = visible_channel(self.request, self.kwargs["pk"])
        return (
            Delivery.objects.visible_to(self.request.user)
            .filter(channel=channel)
            .select_related("alert__team", "channel")
            .prefetch_related("attempts")
        )

    def row(self, obj: Delivery) -> dict[str, Any]:  # type: ignore[override]
        return dict(DeliverySerializer(obj).data)
