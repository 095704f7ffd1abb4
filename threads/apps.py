from __future__ import annotations

from django.apps import AppConfig


class ThreadsConfig(AppConfig):
    name = "threads"
    verbose_name = "Agent threads"

    def ready(self) -> None:
        from threads import tasks  # noqa: F401 - registers its Celery tasks in every process
