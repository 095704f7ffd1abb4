from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from missioncontrol.live import on_publish
        from notifications import dispatch, tasks  # noqa: F401 - tasks: registers its Celery tasks
        from notifications.models import Channel

        on_publish(dispatch.on_published)
        post_save.connect(dispatch.forget, sender=Channel, dispatch_uid="notifications.forget")
        post_delete.connect(dispatch.forget, sender=Channel, dispatch_uid="notifications.forget.d")
