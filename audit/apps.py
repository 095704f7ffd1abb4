from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Permission audit"

    def ready(self) -> None:
        from audit import (
            policy,  # noqa: F401 - connects the rule-change signals
            signals,  # noqa: F401 (connects the login receivers)
        )
