from __future__ import annotations

from django.urls import path

from missioncontrol.api import auth, graph, preferences, search

views = preferences.SavedViewViewSet

tokens = auth.APITokenViewSet

urlpatterns = [
    path("auth/token/", auth.TokenObtain.as_view(), name="token-obtain"),
    path("auth/token/refresh/", auth.TokenRefresh.as_view(), name="token-refresh"),
    path("auth/me", auth.Me.as_view(), name="auth-me"),
    path("auth/session-token/", auth.SessionToken.as_view(), name="session-token"),
    path("tokens", tokens.as_view({"get": "list", "post": "create"}), name="token-list"),
    path("tokens/<int:pk>", tokens.as_view({"get": "retrieve", "delete": "destroy"}), name="token-detail"),
    path("tokens/<int:pk>/revoke", tokens.as_view({"post": "revoke"}), name="token-revoke"),
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
