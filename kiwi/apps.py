from __future__ import annotations

from django.apps import AppConfig


class KiwiConfig(AppConfig):
    name = "kiwi"
    verbose_name = "Kiwi MCP workspaces"

    def ready(self) -> None:
        from kiwi import tasks  # noqa: F401 - registers its Celery tasks in every process
