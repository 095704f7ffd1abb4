from __future__ import annotations

from django.apps import AppConfig


class McpsConfig(AppConfig):
    name = "mcps"
    verbose_name = "MCP servers"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from mcps import tasks  # noqa: F401 - registers its Celery tasks in every process
        from mcps.metrics import server_gauges
        from mcps.models import MCPServer
        from mcps.signals import registered
        from missioncontrol import metrics

        post_save.connect(registered, sender=MCPServer, dispatch_uid="mcps.registered")
        metrics.register_gauges(server_gauges, database=True)
