from __future__ import annotations

from django.urls import path

from mcps import views

urlpatterns = [
    path("servers", views.server_list, name="server-list"),
    path("servers/new", views.server_new, name="server-new"),
    path("servers/new/test", views.server_test, name="server-test-new"),
    path("servers/import", views.server_import, name="server-import"),
    path("servers/<str:mcp_id>", views.server_page, name="server-detail"),
    path("servers/<str:mcp_id>/edit", views.server_edit, name="server-edit"),
    path("servers/<str:mcp_id>/test", views.server_test, name="server-test"),
    path("servers/<str:mcp_id>/enable", views.server_enable, name="server-enable"),
    path("servers/<str:mcp_id>/remove", views.server_delete, name="server-delete"),
    path("servers/<str:mcp_id>/terminal", views.terminal, name="server-terminal"),
]
