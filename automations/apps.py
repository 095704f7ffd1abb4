from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        from automations import tasks  # noqa: F401 - registers its Celery tasks in every process
        from automations.system import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="automations.system_directives")
        from django.db.models.signals import post_delete, post_save

        from automations import triggers
        from automations.models import Automation, Directive
        from missioncontrol.live import on_publish

        on_publish(triggers.on_published)
        for model in (Automation, Directive):
            post_save.connect(
                triggers.forget, sender=model, dispatch_uid=f"automations.forget.{model.__name__}"
            )
            post_delete.connect(
                triggers.forget, sender=model, dispatch_uid=f"automations.forget.d.{model.__name__}"
            )
