from __future__ import annotations

from django.contrib import admin

from missioncontrol.visibility import VisibleRowsAdmin
from threads.models import ExecutionStep, LLMMessage, Session, Thread, ThreadEvent


class StepInline(VisibleRowsAdmin, admin.TabularInline):
    model = ExecutionStep
    extra = 0
    fields = ("sequence", "step_type", "status", "description", "duration_ms", "timestamp")
    ordering = ("sequence",)


class MessageInline(VisibleRowsAdmin, admin.TabularInline):
    model = LLMMessage
    extra = 0
    fields = ("timestamp", "role", "content")
    ordering = ("timestamp",)


@admin.register(Thread)
class ThreadAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "error_count",
        "mcp",
        "parent_id",
        "session_id",
        "started_at",
        "ended_at",
        "user_input",
    )
    list_filter = ("status", "mcp")
    search_fields = ("id", "parent__id", "user_input")
    date_hierarchy = "started_at"
    raw_id_fields = ("parent",)
    inlines = [StepInline, MessageInline]


@admin.register(ExecutionStep)
class ExecutionStepAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = ("thread", "sequence", "step_type", "status", "duration_ms", "timestamp")
    list_filter = ("step_type", "status")
    search_fields = ("thread__id", "description")
    raw_id_fields = ("thread",)


@admin.register(LLMMessage)
class LLMMessageAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = ("thread", "role", "timestamp", "content")
    list_filter = ("role",)
    search_fields = ("thread__id", "content")
    raw_id_fields = ("thread",)


@admin.register(ThreadEvent)
class ThreadEventAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = ("id", "type", "thread_id", "received_at")
    list_filter = ("type",)
    search_fields = ("id", "thread_id")


@admin.register(Session)
class SessionAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = ("id", "via", "principal", "team", "started_at", "last_seen_at", "ended_at")
    list_filter = ("via", "team")
    search_fields = ("id", "principal")
    date_hierarchy = "started_at"
