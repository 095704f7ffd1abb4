from __future__ import annotations

from django.urls import path

from mcps.api import views

urlpatterns = [
    path("mcps", views.ServerList.as_view(), name="mcp-list"),
    path("mcps/<str:mcp_id>", views.ServerDetail.as_view(), name="mcp-detail"),
    path("mcps/<str:mcp_id>/tools", views.ServerTools.as_view(), name="mcp-tools"),
    path("mcps/<str:mcp_id>/health", views.ServerHealth.as_view(), name="mcp-health"),
    path("mcps/<str:mcp_id>/stats", views.ServerStats.as_view(), name="mcp-stats"),
    path("mcps/<str:mcp_id>/reconnect", views.reconnect, name="mcp-reconnect"),
    path("mcps/<str:mcp_id>/tools/<str:tool>/call", views.call_tool, name="mcp-call-tool"),
]
