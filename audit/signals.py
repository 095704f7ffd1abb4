"""Logins and failed logins, from Django's own signals: sessions, the admin, JWT obtain."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from audit import access


@receiver(user_logged_in, dispatch_uid="audit.login")
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    access.record(user, access.LOGIN, "session", request=request)


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    # Django has already masked the password in `credentials`; keep only the name.
    name = str(credentials.get("username") or "")
    access.record(name, access.LOGIN_FAILED, "session", outcome=access.FAILURE, request=request)
