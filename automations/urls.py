from __future__ import annotations

from django.urls import path

from automations import views

urlpatterns = [
    path("directives", views.directive_list, name="directive-list-page"),
    path("directives/<slug:name>", views.directive_page, name="directive-page"),
    path("directives/<slug:name>/run", views.directive_run, name="directive-run"),
    path("automations", views.automation_list, name="automation-list-page"),
    path("automations/new", views.automation_new, name="automation-new"),
    path("automations/preview", views.schedule_preview, name="automation-schedule-preview"),
    path("automations/inputs", views.inputs_form, name="automation-inputs-form"),
    path("automations/<int:pk>", views.automation_page, name="automation-page"),
    path("automations/<int:pk>/delete", views.automation_delete, name="automation-delete"),
    path("automations/<int:pk>/run", views.automation_run, name="automation-run"),
    path("executions", views.execution_list, name="execution-list-page"),
    path("executions/<int:pk>", views.execution_page, name="execution-page"),
    path("executions/<int:pk>/live", views.execution_live, name="execution-live"),
    path("knowledge", views.knowledge_list, name="knowledge-list-page"),
    path("knowledge/<slug:slug>", views.knowledge_page, name="knowledge-page"),
]
