"""Pages need a signed-in user with a role; the API, GraphQL, /health and the admin answer
for themselves."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase, HttpResponseForbidden

from missioncontrol import roles

# These answer 401 (JSON) rather than redirect a script (or a Prometheus scraper) to a
# login page; the admin has its own login; /health and static files are public.
NOT_PAGES = (
    "/api/",
    "/graphql",
    "/metrics",
    "/health",
    "/admin/",
    "/static/",
    "/accounts/login/",
    "/favicon.ico",
)
# A user without a role may still sign out (and in as someone else).
ROLELESS = ("/accounts/",)
NO_ROLE = (
    "<!doctype html><title>Forbidden</title><h1>403 Forbidden</h1><p>Your account has no role that "
    "may read (viewer, operator or admin); ask an admin.</p>"
)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's: every view redirects to LOGIN_URL without a session, bar `NOT_PAGES`;
    a signed-in user without a role (none of viewer, operator, admin) gets 403, as on the
    API and the WebSocket: pages show its teams' rows otherwise."""

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        if request.path_info.startswith(NOT_PAGES):
            return None
        answer = super().process_view(request, view_func, view_args, view_kwargs)
        if answer is not None or not getattr(view_func, "login_required", True):
            return answer
        if request.path_info.startswith(ROLELESS) or roles.can(request.user, roles.READ):
            return None
        return HttpResponseForbidden(NO_ROLE)
