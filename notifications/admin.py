from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from missioncontrol.visibility import VisibleRowsAdmin
from notifications.models import CHANNEL_SETTINGS, Alert, Channel, Delivery, DeliveryAttempt, sees_targets


class TeamScoped(VisibleRowsAdmin, admin.ModelAdmin):
    """Staff who are not admins see their teams' rows here too, as everywhere else."""


@admin.register(Channel)
class ChannelAdmin(TeamScoped):
    """Targets are edited (a JSON list of Apprise URLs) and read whole by admins only;
    anyone else with access to the admin sees them masked."""

    list_display = ("name", "team", "masked_targets", "min_severity", "enabled", "updated_at")
    list_filter = ("enabled", "team", "min_severity")
    search_fields = ("name",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if sees_targets(request.user):
            return CHANNEL_SETTINGS
        return tuple("masked_targets" if f == "targets" else f for f in CHANNEL_SETTINGS)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("masked_targets",)

    @admin.display(description="targets")
    def masked_targets(self, obj: Channel) -> str:
        return ", ".join(obj.masked_targets()) or "—"


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "at", "ok", "sent_to", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False


class ReadOnly(TeamScoped):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    """The history: written by the sending tasks only."""

    list_display = ("created_at", "channel", "purpose", "status", "tries", "title")
    list_filter = ("status", "purpose", "channel")
    search_fields = ("title", "error")
    inlines = [AttemptInline]


@admin.register(Alert)
class AlertAdmin(ReadOnly):
    list_display = ("opened_at", "key", "severity", "team", "repeats", "resolved_at", "resolution")
    list_filter = ("kind", "severity", "team")
    search_fields = ("key", "title")
