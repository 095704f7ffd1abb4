from __future__ import annotations

from django.contrib import admin

from audit.models import PermissionEvent


@admin.register(PermissionEvent)
class PermissionEventAdmin(admin.ModelAdmin):
    list_display = (
        "timestamp",
        "user_id",
        "action",
        "resource",
        "granted",
        "severity",
        "escalation_detected",
        "thread",
    )
    list_filter = ("granted", "severity", "escalation_detected", "action")
    search_fields = ("user_id", "resource", "reason", "thread__id")
    date_hierarchy = "timestamp"
    raw_id_fields = ("thread",)
