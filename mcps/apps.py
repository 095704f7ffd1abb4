from __future__ import annotations

from django.apps import AppConfig


class McpsConfig(AppConfig):
    name = "mcps"
    verbose_name = "MCP servers"
