from __future__ import annotations

from django.urls import path

from kiwi.api import views

urlpatterns = [
    path("kiwi/workspaces", views.WorkspaceList.as_view(), name="kiwi-workspace-list"),
    path("kiwi/items", views.ItemList.as_view(), name="kiwi-item-list"),
    path("kiwi/items/<int:pk>", views.ItemDetail.as_view(), name="kiwi-item-detail"),
]
