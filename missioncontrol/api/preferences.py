"""REST for what each user keeps: `/api/views` (CRUD) and `/api/preferences`.

Only the signed-in user's own rows are reachable; someone else's view is a 404.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from missioncontrol.models import SavedView, UserPreference, validate_filters, validate_view_config
from missioncontrol.openapi import FIELD_ERRORS, FORBIDDEN, NOT_FOUND


def _checked(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class SavedViewSerializer(serializers.ModelSerializer[SavedView]):
    class Meta:
        model = SavedView
        fields = ["id", "name", "description", "view_config", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_view_config(self, value: Any) -> dict[str, Any]:
        return _checked(validate_view_config, value)

    def validate_name(self, value: str) -> str:
        mine = SavedView.objects.filter(user=self.context["request"].user, name=value)
        if self.instance is not None:
            mine = mine.exclude(pk=self.instance.pk)
        if mine.exists():
            raise serializers.ValidationError("You already have a view with this name.")
        return value


_VIEW = {200: SavedViewSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN, 404: NOT_FOUND}


@extend_schema_view(
    list=extend_schema(responses={200: SavedViewSerializer(many=True), 403: FORBIDDEN}),
    create=extend_schema(responses={201: SavedViewSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN}),
    retrieve=extend_schema(responses={200: SavedViewSerializer, 403: FORBIDDEN, 404: NOT_FOUND}),
    update=extend_schema(responses=_VIEW),
    partial_update=extend_schema(responses=_VIEW),
    destroy=extend_schema(responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND}),
)
class SavedViewViewSet(viewsets.ModelViewSet[SavedView]):
    serializer_class = SavedViewSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[SavedView]:
        return SavedView.objects.filter(user=self.request.user)

    def perform_create(self, serializer: SavedViewSerializer) -> None:  # type: ignore[override]
        serializer.save(user=self.request.user)


class PreferenceSerializer(serializers.ModelSerializer[UserPreference]):
    # Null until the user first saves (GET answers the defaults): said so in the schema.
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = UserPreference
        fields = ["theme", "log_filters", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate_log_filters(self, value: Any) -> dict[str, str]:
        return _checked(validate_filters, "logs", value)


_SAVED = {200: PreferenceSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN}


class Preferences(APIView):
    """GET the signed-in user's preferences (defaults until saved); PUT or PATCH them."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: PreferenceSerializer, 403: FORBIDDEN})
    def get(self, request: Request) -> Response:
        return Response(PreferenceSerializer(self._mine(request)).data)

    @extend_schema(request=PreferenceSerializer, responses=_SAVED)
    def put(self, request: Request) -> Response:
        return self._save(request, partial=False)

    @extend_schema(request=PreferenceSerializer, responses=_SAVED)
    def patch(self, request: Request) -> Response:
        return self._save(request, partial=True)

    def _mine(self, request: Request) -> UserPreference:
        return UserPreference.objects.filter(user=request.user).first() or UserPreference(user=request.user)

    def _save(self, request: Request, partial: bool) -> Response:
        serializer = PreferenceSerializer(self._mine(request), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)
