from __future__ import annotations

from django.apps import AppConfig


class McpsConfig(AppConfig):
    name = "mcps"
    verbose_name = "MCP servers"

    def ready(self) -> None:
        from mcps import tasks  # noqa: F401 - registers its Celery tasks in every process
