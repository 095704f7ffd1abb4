from __future__ import annotations

from django.contrib import admin

from missioncontrol.visibility import VisibleRowsAdmin
from usage.models import LLMUsage


@admin.register(LLMUsage)
class LLMUsageAdmin(VisibleRowsAdmin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("timestamp", "thread", "sequence", "model", "user", "input_tokens", "output_tokens")
    list_filter = ("model",)
    search_fields = ("thread__id", "model", "user")
    raw_id_fields = ("thread",)
    date_hierarchy = "timestamp"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
