from __future__ import annotations

from django.apps import AppConfig


class KiwiConfig(AppConfig):
    name = "kiwi"
    verbose_name = "Kiwi MCP workspaces"
