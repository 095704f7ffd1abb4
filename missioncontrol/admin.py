from __future__ import annotations

from django.contrib import admin

from missioncontrol.models import TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "name", "status", "deliveries", "retries", "worker", "finished_at")
    list_filter = ("status", "name")
    search_fields = ("task_id", "name", "error", "args_digest")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in TaskRun._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
