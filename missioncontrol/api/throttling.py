"""rate_limits.api for DRF views, with the same 429 body as the other surfaces.

Kept apart from missioncontrol/ratelimit.py: DRF imports its throttle classes while
it builds `APIView`, so this module must not be imported by what `APIView` needs.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from missioncontrol.ratelimit import Denied, check_api


class RateLimited(Throttled):
    """DRF's 429, carrying which limit was passed (see `exception_handler`)."""

    def __init__(self, denied: Denied) -> None:
        super().__init__(wait=denied.retry_after, detail=denied.reason)
        self.denied = denied


class ApiRateThrottle(BaseThrottle):
    """rate_limits.api for DRF views, keyed by the user DRF authenticated (or the address)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        denied = check_api(getattr(request, "user", None), request.META.get("REMOTE_ADDR"))
        if denied is None:
            return True
        raise RateLimited(denied)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, but a rate limit answers the same body as everywhere else."""
    if isinstance(exc, RateLimited):
        return Response(
            {"error": exc.denied.as_dict()}, status=429, headers={"Retry-After": str(exc.denied.retry_after)}
        )
    return drf_exception_handler(exc, context)
