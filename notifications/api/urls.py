from __future__ import annotations

from django.urls import path

from notifications.api import views

channels = views.ChannelViewSet

urlpatterns = [
    path(
        "notifications/channels",
        channels.as_view({"get": "list", "post": "create"}),
        name="notification-channel-list",
    ),
    path(
        "notifications/channels/<int:pk>",
        channels.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="notification-channel-detail",
    ),
    path(
        "notifications/channels/<int:pk>/test", views.ChannelTest.as_view(), name="notification-channel-test"
    ),
    path(
        "notifications/channels/<int:pk>/deliveries",
        views.DeliveryList.as_view(),
        name="notification-delivery-list",
    ),
]
