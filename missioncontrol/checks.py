"""System checks (`manage.py check`, run before `serve`, `migrate` and the other commands)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def beat_schedule_tasks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every periodic job names a task some app registered (in its AppConfig.ready)."""
    from missioncontrol.scheduler import unknown_tasks

    return [
        Error(
            f"CELERY_BEAT_SCHEDULE[{name!r}] names the task {task!r}, which no app registers",
            hint="import the app's tasks module in its AppConfig.ready()",
            id="missioncontrol.E001",
        )
        for name, task in unknown_tasks(settings.CELERY_BEAT_SCHEDULE).items()
    ]
