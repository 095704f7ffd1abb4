from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from logs import export as exporting
from logs.models import ArchiveDay, LogEntry, LogSource
from missioncontrol.visibility import VisibleRowsAdmin


@admin.register(LogEntry)
class LogEntryAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = ("timestamp", "level", "service", "mcp_id", "thread_id", "message")
    list_filter = ("level", "service")
    search_fields = ("message", "thread_id", "mcp_id", "id")
    date_hierarchy = "timestamp"
    # The hot table can hold millions of rows: don't count them for every page.
    show_full_result_count = False
    actions = ["export_csv", "export_jsonl"]

    def _export(self, queryset: QuerySet[LogEntry], fmt: str) -> StreamingHttpResponse:
        # The same streamed export as /api/logs/export, over the selected rows.
        response = StreamingHttpResponse(exporting.stream(queryset, fmt), content_type=exporting.FORMATS[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="logs-{stamp}.{fmt}"'
        return response

    @admin.action(description="Export selected logs as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> StreamingHttpResponse:
        return self._export(queryset, "csv")

    @admin.action(description="Export selected logs as JSON Lines")
    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[LogEntry]) -> StreamingHttpResponse:
        return self._export(queryset, "jsonl")


@admin.register(ArchiveDay)
class ArchiveDayAdmin(admin.ModelAdmin):
    list_display = ("day", "mcp_id", "tier", "rows", "archived_at", "restored_until", "name")
    list_filter = ("tier",)
    search_fields = ("mcp_id", "name")
    date_hierarchy = "day"
    readonly_fields = [f.name for f in ArchiveDay._meta.fields]


@admin.register(LogSource)
class LogSourceAdmin(admin.ModelAdmin):
    """How far each configured log file has been read (set the files on the server)."""

    list_display = ("mcp", "path", "format", "offset", "entries", "malformed", "rotations", "last_read_at")
    list_filter = ("format",)
    search_fields = ("path", "mcp__id")
    readonly_fields = [f.name for f in LogSource._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a source comes from a server's log_files
