from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def ensure_aggregate_server(using: str = "default", **kwargs: Any) -> None:
    """Mission Control's own /mcp endpoint has its server row after every migrate and
    flush (a migration makes it once; a flush, as tests and `manage.py flush` do, drops
    it, and calls filed under it would then break their foreign key)."""
    from mcps.models import AGGREGATE_ID, MCPServer

    if not MCPServer.objects.using(using).filter(id=AGGREGATE_ID).exists():
        MCPServer.objects.using(using).get_or_create(
            id=AGGREGATE_ID, defaults={"name": "Mission Control (/mcp)", "source": "gateway"}
        )


class McpsConfig(AppConfig):
    name = "mcps"
    verbose_name = "MCP servers"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        from mcps import tasks  # noqa: F401 - registers its Celery tasks in every process
        from mcps.metrics import server_gauges
        from mcps.models import MCPServer
        from mcps.signals import registered
        from missioncontrol import metrics

        post_save.connect(registered, sender=MCPServer, dispatch_uid="mcps.registered")
        post_migrate.connect(ensure_aggregate_server, sender=self, dispatch_uid="mcps.aggregate_server")
        metrics.register_gauges(server_gauges, database=True)
