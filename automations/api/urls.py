from __future__ import annotations

from django.urls import path

from automations.api import views

automations = views.AutomationViewSet

urlpatterns = [
    path("internal/directives", views.DirectiveList.as_view(), name="internal-directive-list"),
    path(
        "internal/directives/<slug:name>", views.DirectiveDetail.as_view(), name="internal-directive-detail"
    ),
    path("internal/scripts", views.ScriptList.as_view(), name="internal-script-list"),
    path("internal/execute", views.Execute.as_view(), name="internal-execute"),
    path("internal/executions", views.ExecutionList.as_view(), name="internal-execution-list"),
    path("internal/executions/<int:pk>", views.ExecutionDetail.as_view(), name="internal-execution-detail"),
    path(
        "internal/executions/<int:pk>/cancel",
        views.ExecutionCancel.as_view(),
        name="internal-execution-cancel",
    ),
    path(
        "internal/automations",
        automations.as_view({"get": "list", "post": "create"}),
        name="internal-automation-list",
    ),
    path(
        "internal/automations/<int:pk>",
        automations.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="internal-automation-detail",
    ),
    path("internal/knowledge", views.KnowledgeList.as_view(), name="internal-knowledge-list"),
    path("internal/knowledge/<slug:slug>", views.KnowledgeDetail.as_view(), name="internal-knowledge-detail"),
]
