"""The MCP servers' gauge on /metrics: registered servers by gateway status, read when scraped."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from mcps.models import MCPServer


def server_gauges() -> Iterator[GaugeMetricFamily]:
    rows = MCPServer.objects.order_by().values("status").annotate(n=Count("id"))
    statuses = {row["status"]: row["n"] for row in rows}
    servers = GaugeMetricFamily(
        "mission_control_mcp_connections", "Registered MCP servers by gateway status.", labels=["status"]
    )
    for status in MCPServer.Status.values:
        servers.add_metric([status], statuses.get(status, 0))
    yield servers
