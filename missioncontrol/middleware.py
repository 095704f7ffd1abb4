"""Pages need a signed-in user; the API, GraphQL, /health and the admin answer for themselves."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseBase

# These answer 401 (JSON) rather than redirect a script to a login page; the admin has
# its own login; /health and static files are public.
NOT_PAGES = ("/api/", "/graphql", "/health", "/admin/", "/static/", "/accounts/login/")


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Django's: every view redirects to LOGIN_URL without a session, bar `NOT_PAGES`."""

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        if request.path_info.startswith(NOT_PAGES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
