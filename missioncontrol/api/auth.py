"""REST for authentication: JWT obtain and refresh, API tokens (admins), and who am I.

`POST /api/auth/token/` {username, password} -> {access, refresh};
`POST /api/auth/token/refresh/` {refresh} -> {access}; `POST /api/auth/session-token/`
-> {access} for a signed-in browser (the pages' terminal talks to /mcp, which takes
bearer tokens only). A failed obtain is recorded as a
failed login (Django's `user_login_failed`, audit/signals.py); an issue or refresh as
an access event.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from audit import access
from missioncontrol import logins, roles, tokens
from missioncontrol.models import APIToken, Team
from missioncontrol.openapi import (
    FIELD_ERRORS,
    FORBIDDEN,
    NOT_FOUND,
    SIGN_IN_BUSY,
    SIGN_IN_LIMITED,
    UNAUTHORIZED,
)

RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429, 503], description="Seconds."
)


@extend_schema(
    responses={
        200: TokenObtainPairSerializer,
        400: FIELD_ERRORS,
        401: UNAUTHORIZED,
        429: SIGN_IN_LIMITED,
        503: SIGN_IN_BUSY,
    },
    parameters=[RETRY_AFTER],
)
class TokenObtain(TokenObtainPairView):
    """{username, password} -> {access, refresh}: a JWT pair for `Authorization: Bearer`."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.AuthenticationFailed:
            refused = logins.refusal_of(request)
            if refused is not None:  # throttled or busy: 429 / 503 with Retry-After
                return refused.response()  # type: ignore[return-value]
            raise
        access.record(serializer.user, access.TOKEN_ISSUED, "jwt", request=request._request)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


@extend_schema(responses={200: TokenRefreshSerializer, 400: FIELD_ERRORS, 401: UNAUTHORIZED})
class TokenRefresh(TokenRefreshView):
    """{refresh} -> {access}: a new access token while the refresh token lasts."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:  # an access token, or one expired or tampered with: 401
            raise InvalidToken(exc.args[0]) from exc
        user_id = RefreshToken(request.data["refresh"], verify=False).get("user_id")
        user = get_user_model().objects.filter(pk=user_id).first()
        access.record(user, access.TOKEN_REFRESHED, "jwt", request=request._request)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class SessionTokenSerializer(serializers.Serializer[Any]):
    access = serializers.CharField(help_text="A JWT access token (short-lived) for `Authorization: Bearer`.")


class SessionToken(APIView):
    """A short-lived JWT access token for the signed-in browser session.

    Session authentication only, so the CSRF check applies: another site cannot mint
    one with the user's cookie. The pages use it to speak to /mcp, which has no sessions.
    """

    authentication_classes = (SessionAuthentication,)
    read_permission = write_permission = None  # any signed-in user; its role applies on use

    @extend_schema(request=None, responses={200: SessionTokenSerializer, 403: FORBIDDEN})
    def post(self, request: Request) -> Response:
        token = AccessToken.for_user(request.user)
        access.record(request.user, access.TOKEN_ISSUED, "jwt (session)", request=request._request)
        return Response({"access": str(token)})


class MeSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=[r.value for r in roles.Role], allow_null=True)
    teams = serializers.ListField(child=serializers.CharField(), help_text="Team slugs.")
    sees_all_teams = serializers.BooleanField()


class Me(APIView):
    """The signed-in user, its role and teams."""

    read_permission = None  # any signed-in user, whatever its role

    @extend_schema(responses={200: MeSerializer, 401: FORBIDDEN})
    def get(self, request: Request) -> Response:
        user = request.user
        role = roles.role_of(user)
        return Response(
            {
                "username": user.get_username(),
                "role": role.value if role else None,
                "teams": list(user.teams.order_by("slug").values_list("slug", flat=True)),
                "sees_all_teams": roles.sees_all(user),
            }
        )


class APITokenSerializer(serializers.ModelSerializer[APIToken]):
    owner = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="Who the token acts as (default: you).",
    )
    team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="The team its threads belong to.",
    )
    token = serializers.SerializerMethodField(help_text="The token itself: in the answer to its issue only.")

    class Meta:
        model = APIToken
        fields = [
            "id",
            "name",
            "owner",
            "team",
            "scope",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "token",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "token"]

    def get_token(self, obj: APIToken) -> str | None:
        return getattr(obj, "raw", None)

    def validate_owner(self, owner: Any) -> Any:
        try:
            tokens.check_owner(self.context["request"].user, owner)
        except tokens.MoreThanYours as exc:
            raise serializers.ValidationError(str(exc)) from None
        return owner


@extend_schema_view(
    list=extend_schema(responses={200: APITokenSerializer(many=True), 403: FORBIDDEN}),
    create=extend_schema(responses={201: APITokenSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN}),
    retrieve=extend_schema(responses={200: APITokenSerializer, 403: FORBIDDEN, 404: NOT_FOUND}),
    destroy=extend_schema(responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND}),
    revoke=extend_schema(request=None, responses={200: APITokenSerializer, 403: FORBIDDEN, 404: NOT_FOUND}),
)
class APITokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[APIToken],
):
    """Admins issue and revoke API tokens. The token is shown once, in the issue's answer."""

    serializer_class = APITokenSerializer
    read_permission = roles.MANAGE_TOKENS
    write_permission = roles.MANAGE_TOKENS
    pagination_class = None

    def get_queryset(self) -> QuerySet[APIToken]:
        return APIToken.objects.select_related("owner", "team").order_by("-created_at", "-id")

    def perform_create(self, serializer: APITokenSerializer) -> None:  # type: ignore[override]
        data = serializer.validated_data
        serializer.instance = tokens.issue(
            self.request.user,
            data["name"],
            data.get("owner"),
            data.get("team"),
            self.request._request,
            scope=data.get("scope", APIToken.Scope.ALL),
        )

    def perform_destroy(self, instance: APIToken) -> None:
        self._revoke(instance)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the token (it stays listed, with its revoked_at)."""
        token = self.get_object()
        self._revoke(token)
        return Response(self.get_serializer(token).data)

    def _revoke(self, token: APIToken) -> None:
        tokens.revoke(self.request.user, token, self.request._request)
