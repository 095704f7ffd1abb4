from __future__ import annotations

from django.urls import path

from notifications import views

urlpatterns = [
    path("notifications", views.channel_list, name="notification-list-page"),
    path("notifications/new", views.channel_new, name="notification-channel-new"),
    path("notifications/<int:pk>", views.channel_page, name="notification-channel-page"),
    path("notifications/<int:pk>/test", views.channel_test, name="notification-channel-test-page"),
    path("notifications/<int:pk>/delete", views.channel_delete, name="notification-channel-delete"),
]
