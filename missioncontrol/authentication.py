"""Who is asking: a session, a JWT access token, or an API token, on every surface.

One domain function, `user_for_bearer`, turns a bearer credential into a user; the
REST authentication classes, the plain async views (`api_access`), GraphQL, the
WebSocket (`?token=`) and /mcp all go through it, so they cannot disagree.

An API token (`mct_...`) acts as its owner: the owner's roles and teams apply. Its
team marks what it produces (threads recorded through /mcp). Its use is written
(`last_used_at`, an access event) at most once a minute. A metrics-only token (a
Prometheus scraper's) reads `/metrics` and every other surface refuses it (403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from audit import access
from audit.policy import Subject
from missioncontrol import ratelimit, roles
from missioncontrol.credentials import bearer
from missioncontrol.models import TOKEN_PREFIX, APIToken

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def api_token_user(raw: str, request: Any = None, via: str = "rest") -> tuple[Any, APIToken] | None:
    """(owner, token) for an active API token, its use recorded; None if unknown or revoked."""
    token = APIToken.objects.authenticate(raw)
    if token is None:
        return None
    ratelimit.remember_token(raw, token.owner_id)
    if token.touch():
        access.record(
            token.owner,
            access.TOKEN_USED,
            f"api_token:{token.pk}",
            details={"name": token.name, "via": via, "team": token.team.slug if token.team else None},
            request=request,
        )
    token.owner.mc_api_token = token
    return token.owner, token


METRICS_ONLY = "This token may read /metrics only."


def metrics_only(user: Any) -> bool:
    """Whether `user` came with a metrics-only API token (refused but on /metrics)."""
    token: APIToken | None = getattr(user, "mc_api_token", None)
    return token is not None and token.metrics_only


def jwt_user(raw: str) -> Any | None:
    """The active user of a valid, unexpired JWT access token, or None."""
    authenticator = JWTAuthentication()
    try:
        return authenticator.get_user(authenticator.get_validated_token(raw.encode()))
    except (InvalidToken, TokenError, exceptions.AuthenticationFailed):
        return None


def user_for_bearer(raw: str, request: Any = None, via: str = "rest") -> Any | None:
    """The user a bearer credential (API token or JWT access token) stands for, or None."""
    if not raw:
        return None
    if raw.startswith(TOKEN_PREFIX):
        found = api_token_user(raw, request, via)
        return found[0] if found else None
    return jwt_user(raw)


@dataclass(frozen=True)
class Principal:
    """Who an MCP client is (/mcp, mcp_proxy): the name calls are recorded under, the
    team its threads belong to, whether it may call tools, and what policy rules match
    (its token, username and team slugs: `subject()`)."""

    user_id: int
    name: str
    team_id: int | None
    may_call_tools: bool
    role: str | None
    username: str = ""
    token: str | None = None  # the API token's id, when it came with one
    teams: tuple[str, ...] = ()  # slugs of the user's teams
    may_read: bool = True  # False for a user without a role: /mcp and mcp_proxy refuse it
    metrics_only: bool = False  # it came with a metrics-only token: /mcp and mcp_proxy refuse it

    def refusal(self) -> str | None:
        """Why /mcp and mcp_proxy refuse this caller, or None."""
        if self.metrics_only:
            return f"{self.name}: {METRICS_ONLY}"
        if not self.may_read:
            return f"{self.name} has no role (viewer, operator or admin); ask an admin"
        return None

    def subject(self) -> Subject:
        """The policy subject (audit.policy) of this caller."""
        return Subject(token=self.token, user=self.username or None, teams=self.teams)


def principal_for_bearer(raw: str, scope: Any = None, via: str = "/mcp") -> Principal | None:
    """The Principal of an API token or JWT; None if the credential is not valid."""
    user = user_for_bearer(raw, scope, via)
    return None if user is None else principal_of(user)


def principal_of(user: Any) -> Principal:
    """The Principal of an authenticated user (and of the API token it came with, if any).

    An API token's team is its own; otherwise the user's team if it has exactly one.
    """
    token: APIToken | None = getattr(user, "mc_api_token", None)
    if token is not None:
        team_id, name = token.team_id, f"{user.get_username()} (token {token.name})"
    else:
        teams = roles.team_ids(user)
        team_id, name = (teams[0] if len(teams) == 1 else None), user.get_username()
    role = roles.role_of(user)
    scoped = token is not None and token.metrics_only
    return Principal(
        user.pk,
        name,
        team_id,
        not scoped and roles.can(user, roles.CALL_TOOL),
        role.value if role else None,
        username=user.get_username(),
        token=str(token.pk) if token is not None else None,
        teams=tuple(user.teams.order_by("slug").values_list("slug", flat=True)),
        may_read=not scoped and roles.can(user, roles.READ),
        metrics_only=scoped,
    )


class APITokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer mct_...`; other bearer credentials are left to the JWT class."""

    def authenticate(self, request: Request) -> tuple[Any, APIToken] | None:
        raw = bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        if not raw.startswith(TOKEN_PREFIX):
            return None
        found = api_token_user(raw, request._request)
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        if found[1].metrics_only:
            raise exceptions.PermissionDenied(METRICS_ONLY)
        return found

    def authenticate_header(self, request: Request) -> str:
        # Present on the first class, so that DRF answers 401 (not 403) without credentials.
        return 'Bearer realm="api"'


class APITokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = APITokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-team API token (`mct_...`), issued by an admin: "
            "`manage.py create_api_token` or `POST /api/tokens`.",
        }


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, for a session-authenticated unsafe request to a csrf_exempt view."""
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda r: HttpResponse(), (), {})


def unauthorized(reason: str = "Authentication credentials were not provided.") -> JsonResponse:
    response = JsonResponse({"detail": reason}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def forbidden(reason: str) -> JsonResponse:
    return JsonResponse({"detail": reason}, status=403)


def _resolve(request: HttpRequest, permission: str | None) -> tuple[Any, HttpResponse | None]:
    """(user, None) if `request` is authenticated and allowed; (None, the answer) otherwise."""
    raw = bearer(request.META.get("HTTP_AUTHORIZATION", ""))
    if raw:
        user = user_for_bearer(raw, request)
        if user is None:
            return None, unauthorized("Invalid, expired or revoked bearer token.")
        if metrics_only(user):
            return None, forbidden(METRICS_ONLY)
    else:
        user = request.user
        if not user.is_authenticated:
            return None, unauthorized()
        if request.method not in SAFE_METHODS:
            failure = _csrf_failure(request)
            if failure is not None:
                return None, forbidden("CSRF check failed: send the csrftoken cookie's value as X-CSRFToken.")
    if not user.is_active:
        return None, unauthorized("This user is inactive.")
    if permission is not None and not roles.can(user, permission):
        return None, forbidden(f"Your role does not allow this (needs {permission}).")
    return user, None


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Who may scrape /metrics: a session or bearer (API token, JWT) of a user with a role
    that may read, or a metrics-only token. None if `request` may; else the 401 or 403."""
    raw = bearer(request.META.get("HTTP_AUTHORIZATION", ""))
    if raw:
        user = user_for_bearer(raw, request, via="metrics")
        if user is None:
            return unauthorized("Invalid, expired or revoked bearer token.")
    else:
        user = request.user
        if not user.is_authenticated:
            return unauthorized()
    if not user.is_active:
        return unauthorized("This user is inactive.")
    if not (metrics_only(user) or roles.can(user, roles.READ)):
        return forbidden(f"Your role does not allow this (needs {roles.READ}, or a metrics-only token).")
    return None


ViewFn = Callable[..., Awaitable[HttpResponse]]


def api_access(permission: str | None = roles.READ) -> Callable[[ViewFn], ViewFn]:
    """For plain async views: a session or a bearer token, then `permission`.

    401 (JSON, `WWW-Authenticate: Bearer`) without valid credentials; 403 without the
    permission, or without the CSRF token on a session's unsafe request.
    """

    def decorate(view: ViewFn) -> ViewFn:
        @wraps(view)
        async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user, answer = await sync_to_async(_resolve)(request, permission)
            if answer is not None:
                return answer
            request.user = user
            return await view(request, *args, **kwargs)

        # Django's CSRF middleware would refuse a bearer request of a method it does not
        # know as safe (QUERY, say) with an HTML page; `_resolve` checks CSRF itself, for
        # sessions only.
        return csrf_exempt(wrapped)

    return decorate
