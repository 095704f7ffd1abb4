from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AccessEvent, PermissionEvent, PolicyRule
from missioncontrol.visibility import VisibleRowsAdmin


@admin.register(PermissionEvent)
class PermissionEventAdmin(VisibleRowsAdmin, admin.ModelAdmin):
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


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    """The access audit: read-only, for admins (audit.view_accessevent)."""

    list_display = ("timestamp", "actor_name", "action", "target", "outcome", "ip")
    list_filter = ("action", "outcome")
    search_fields = ("actor_name", "target", "action")
    date_hierarchy = "timestamp"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
