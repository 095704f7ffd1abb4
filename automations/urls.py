from __future__ import annotations

from django.urls import path

from automations import views

urlpatterns = [
    path("directives", views.directive_list, name="directive-list-page"),
    path("directives/<slug:name>", views.directive_page, name="directive-page"),
    path("knowledge", views.knowledge_list, name="knowledge-list-page"),
    path("knowledge/<slug:slug>", views.knowledge_page, name="knowledge-page"),
]
