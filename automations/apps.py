from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        from automations.system import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="automations.system_directives")
