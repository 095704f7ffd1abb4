from __future__ import annotations

from django.urls import path

from mcps import views

urlpatterns = [
    path("servers", views.server_list, name="server-list"),
    path("servers/<str:mcp_id>", views.server_page, name="server-detail"),
    path("servers/<str:mcp_id>/terminal", views.terminal, name="server-terminal"),
]
