"""What a visitor sees when something is missing or broken, and the pages' Content-Security-Policy.

With DEBUG off (the default) Django calls `not_found` and `server_error`: the API (and
GraphQL) answers JSON, `{"detail": ...}` like DRF; a page answers templates/404.html or
500.html in the product's look. 500.html is rendered without the request's context, so
a failure of the database or of a context processor cannot break the error page too.

Every HTML page carries a Content-Security-Policy: scripts only from this server or
inline with the request's nonce (`{{ csp_nonce }}`), no plugins, no framing, forms
posting only here; the WebSocket connects to this server.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import requires_csrf_token

API_PREFIXES = ("/api/", "/graphql")
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse(loader.render_to_string("404.html", {"path": request.path}, request), status=404)


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Server error: it has been logged; try again later."}, status=500)
    return HttpResponse(loader.get_template("500.html").render(), status=500)


def nonce(request: HttpRequest) -> str:
    """This request's script nonce, made on first use."""
    value = getattr(request, "_csp_nonce", None)
    if value is None:
        value = request._csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]
    return value


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """Context processor: `{{ csp_nonce }}` for the pages' inline scripts."""
    return {"csp_nonce": nonce(request)}


class ContentSecurityPolicy(MiddlewareMixin):
    """Adds the policy to HTML answers that do not set their own."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        html = response.get("Content-Type", "").startswith("text/html")
        if html and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = POLICY.format(nonce=nonce(request))
        return response
