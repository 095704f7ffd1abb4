from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MissionControlConfig(AppConfig):
    name = "missioncontrol"
    verbose_name = "Mission Control"

    def ready(self) -> None:
        from missioncontrol import (
            checks,  # noqa: F401 - registers the system checks
            tasks,  # noqa: F401 - registers its Celery tasks in every process
        )
        from missioncontrol.ingest import spool  # noqa: F401 - registers its depth gauges on /metrics
        from missioncontrol.roles import ensure_groups

        # After every app's permissions exist (post_migrate is sent per app; this
        # app's comes after django.contrib.auth's, as INSTALLED_APPS orders them).
        post_migrate.connect(ensure_groups, sender=self, dispatch_uid="missioncontrol.ensure_groups")
