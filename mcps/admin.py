from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from mcps.gateway import rpc
from mcps.models import HealthCheck, IngestKey, MCPServer, Prompt, Resource, Tool


class ToolInline(admin.TabularInline):
    model = Tool
    fields = ("name", "title", "description", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the catalog comes from the server


@admin.register(MCPServer)
class MCPServerAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "transport", "enabled", "status", "protocol_version", "last_seen")
    list_filter = ("status", "transport", "enabled", "source")
    search_fields = ("id", "name", "command", "url")
    date_hierarchy = "last_seen"
    readonly_fields = (
        "status",
        "last_seen",
        "created_at",
        "protocol_version",
        "server_info",
        "capabilities",
        "instructions",
        "connected_at",
        "last_error",
    )
    fieldsets = (
        (None, {"fields": ("id", "name", "enabled", "source")}),
        ("Connection", {"fields": ("transport", "command", "args", "env", "cwd", "url", "headers")}),
        ("State", {"fields": readonly_fields}),
    )
    inlines = [ToolInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request: HttpRequest, obj: MCPServer, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        async_to_sync(rpc.notify)("discover", {})  # the gateway connects (or reconnects) now

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str]:
        return {"source": MCPServer.Source.ADMIN, "transport": MCPServer.Transport.STDIO}


@admin.register(Tool, Resource, Prompt)
class CatalogAdmin(admin.ModelAdmin):
    list_display = ("name", "server", "title", "updated_at")
    list_filter = ("server",)
    search_fields = ("name", "title", "description", "server__id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(HealthCheck)
class HealthCheckAdmin(admin.ModelAdmin):
    list_display = ("server", "checked_at", "ok", "latency_ms", "error")
    list_filter = ("ok", "server")
    date_hierarchy = "checked_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(IngestKey)
class IngestKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "mcp", "team", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "mcp", "team")
    search_fields = ("name", "prefix", "mcp__id")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key's secret is shown once at creation, which the add form cannot do.
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[IngestKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
