"""GraphQL filters of MCP servers."""

from __future__ import annotations

import strawberry_django
from django.db.models import Q

from mcps.models import MCPServer


@strawberry_django.filter_type(MCPServer)
class MCPServerFilter:
    """Servers by status and whether the gateway manages them; every given filter must hold."""

    @strawberry_django.filter_field(description="Any of these statuses.")
    def statuses(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}status__in": value})

    @strawberry_django.filter_field(description="True: servers the gateway connects to; false: push-only.")
    def managed(self, value: bool, prefix: str) -> Q:
        return ~Q(**{f"{prefix}transport": ""}) if value else Q(**{f"{prefix}transport": ""})

    @strawberry_django.filter_field
    def enabled(self, value: bool, prefix: str) -> Q:
        return Q(**{f"{prefix}enabled": value})
