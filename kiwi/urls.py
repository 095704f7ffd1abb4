from __future__ import annotations

from django.urls import path

from kiwi import views

urlpatterns = [
    path("kiwi", views.item_list, name="kiwi-list-page"),
    path("kiwi/<slug:workspace>/<str:kind>/<str:name>", views.item_page, name="kiwi-item-page"),
]
