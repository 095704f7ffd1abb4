from __future__ import annotations

from django.urls import path

from missioncontrol.api import graph, preferences, search

views = preferences.SavedViewViewSet

urlpatterns = [
    path("graph/entities", graph.Entities.as_view(), name="graph-entities"),
    path("graph/relationships", graph.Relationships.as_view(), name="graph-relationships"),
    path("graph/search", graph.Search.as_view(), name="graph-search"),
    path("search", search.Search.as_view(), name="search"),
    path("views", views.as_view({"get": "list", "post": "create"}), name="view-list"),
    path(
        "views/<uuid:pk>",
        views.as_view({"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="view-detail",
    ),
    path("preferences", preferences.Preferences.as_view(), name="preferences"),
]
