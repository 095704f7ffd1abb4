from __future__ import annotations

from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Logs"

    def ready(self) -> None:
        from logs import tasks  # noqa: F401 - registers its Celery tasks in every process
        from logs.api.schema import export_operation
        from missioncontrol import openapi

        openapi.register_operation("/api/logs/export", "get", export_operation)
