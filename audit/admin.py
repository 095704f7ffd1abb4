from __future__ import annotations

from django.contrib import admin

from audit.models import PermissionEvent, PolicyRule


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


@admin.register(PolicyRule)
class PolicyRuleAdmin(admin.ModelAdmin):
    """Rules in evaluation order; a save or delete reaches every process within a second."""

    list_display = (
        "id",
        "priority",
        "effect",
        "subject_kind",
        "subject_value",
        "server",
        "tool",
        "action",
        "enabled",
        "description",
        "updated_at",
    )
    list_display_links = ("id", "description")
    list_editable = ("enabled",)
    list_filter = ("effect", "subject_kind", "action", "enabled")
    search_fields = ("subject_value", "server", "tool", "description")
    ordering = ("-priority", "-effect", "id")
