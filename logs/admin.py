from __future__ import annotations

from django.contrib import admin

from logs.models import ArchiveDay, LogEntry


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "level", "service", "mcp_id", "thread_id", "message")
    list_filter = ("level", "service")
    search_fields = ("message", "thread_id", "mcp_id", "id")
    date_hierarchy = "timestamp"
    # The hot table can hold millions of rows: don't count them for every page.
    show_full_result_count = False


@admin.register(ArchiveDay)
class ArchiveDayAdmin(admin.ModelAdmin):
    list_display = ("day", "mcp_id", "tier", "rows", "archived_at", "restored_until", "name")
    list_filter = ("tier",)
    search_fields = ("mcp_id", "name")
    date_hierarchy = "day"
    readonly_fields = [f.name for f in ArchiveDay._meta.fields]
