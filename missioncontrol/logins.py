"""Sign-ins throttled, and their password checks bounded, on every login path.

`/accounts/login/`, `/admin/login/` and `POST /api/auth/token/` all check a password
through `django.contrib.auth.authenticate`, so the limits live in the authentication
backend and hold for each:

- rate_limits.login per username and rate_limits.login_address per client address,
  counted before the password is hashed (missioncontrol/ratelimit.py, Redis-shared);
- at most LOGIN_CONCURRENCY password checks at once in a process (PBKDF2 takes the
  better part of a second of CPU): an attempt finding no free slot within
  LOGIN_SLOT_WAIT seconds is refused at once instead of queueing.

A refused attempt is answered 429 (a limit) or 503 (busy) with Retry-After: JSON on
the API, the sign-in form with the reason on the pages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from missioncontrol import ratelimit


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in was refused before its password was checked."""

    status: int  # 429: a limit; 503: every password-check slot busy
    retry_after: int
    message: str
    limit: str

    def response(self) -> JsonResponse:
        body = {"error": {"limit": self.limit, "reason": self.message, "retry_after": self.retry_after}}
        answer = JsonResponse(body, status=self.status)
        answer["Retry-After"] = str(self.retry_after)
        return answer


def _address(request: Any) -> str | None:
    meta = getattr(request, "META", None)
    return meta.get("REMOTE_ADDR") if meta is not None else None


def check(username: str, address: str | None) -> Refusal | None:
    """Count one sign-in attempt for `username` and `address`; a Refusal past either limit."""
    limits = settings.RATE_LIMITS
    buckets = [
        ("login", f"login:user:{ratelimit.digest(username.casefold())}", limits.login, "this username")
    ]
    if address:
        buckets.append(("login_address", f"login:ip:{address}", limits.login_address, f"address {address}"))
    for name, bucket, rate, who in buckets:
        if not rate.count:
            continue
        retry_after = ratelimit.limiter().hit(bucket, rate)
        if retry_after:
            message = (
                f"Too many sign-in attempts for {who} (more than {rate}). Try again in {retry_after} seconds."
            )
            return Refusal(429, retry_after, message, f"rate_limits.{name}")
    return None


_slots: list[threading.BoundedSemaphore] = []


def _semaphore() -> threading.BoundedSemaphore:
    if not _slots:
        _slots.append(threading.BoundedSemaphore(settings.LOGIN_CONCURRENCY))
    return _slots[0]


def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "LOGIN_CONCURRENCY":
        _slots.clear()


setting_changed.connect(_settings_changed)

BUSY = Refusal(
    503, 1, "Too many sign-ins are being checked right now. Try again in a second.", "login_concurrency"
)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend behind the sign-in limits and the password-check slots.

    A refused attempt raises PermissionDenied (Django then stops, records a failed
    login and answers None); the refusal is left on the request for the view to answer.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        name = username if username is not None else kwargs.get(self._username_field(), "")
        refusal = check(str(name or ""), _address(request))
        if refusal is None:
            slots = _semaphore()
            if slots.acquire(timeout=settings.LOGIN_SLOT_WAIT):
                try:
                    return super().authenticate(request, username, password, **kwargs)
                finally:
                    slots.release()
            refusal = BUSY
        if request is not None:
            request.mc_login_refused = refusal
        raise PermissionDenied(refusal.message)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return str(get_user_model().USERNAME_FIELD)


def refusal_of(request: Any) -> Refusal | None:
    """The Refusal the backend left on `request` (a Django or DRF request), if any."""
    return getattr(request, "mc_login_refused", None)


class RefusalShown:
    """For sign-in forms: a refused attempt shows its reason (`form.refusal`), not "wrong password"."""

    request: Any
    refusal: str = ""

    def clean(self) -> Any:
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError:
            refused = refusal_of(self.request)
            if refused is None:
                raise
            self.refusal = refused.message
            raise ValidationError(refused.message, code="throttled") from None


class SignInForm(RefusalShown, AuthenticationForm):
    """The sign-in page's form (/accounts/login/)."""


class AdminSignInForm(RefusalShown, AdminAuthenticationForm):
    """The Django admin's sign-in form (/admin/login/)."""


class RefusedLoginStatus(MiddlewareMixin):
    """A sign-in page whose attempt was refused answers 429 or 503 with Retry-After."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        refused = refusal_of(request)
        if refused is not None and response.status_code == 200:
            response.status_code = refused.status
            response["Retry-After"] = str(refused.retry_after)
        return response
