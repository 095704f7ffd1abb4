from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from mcps.gateway import rpc
from mcps.models import HealthCheck, IngestKey, MCPServer, Prompt, Resource, Tool
from missioncontrol import roles


class ToolInline(admin.TabularInline):
    model = Tool
    fields = ("name", "title", "description", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # the catalog comes from the server


SECRET_MASK = "***"


class MCPServerForm(forms.ModelForm):  # its Meta comes from MCPServerAdmin
    """Env and headers shown with their values masked; a value left masked is kept.

    The page never carries a stored secret: each value shows as "***", and a key whose
    value comes back as "***" keeps the value it had. Type a new value to change it,
    remove the key to drop it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            if name in self.fields and not self.instance._state.adding:
                self.initial[name] = dict.fromkeys(getattr(self.instance, name) or {}, SECRET_MASK)
                self.fields[
                    name
                ].help_text = "Values are hidden: a value left as *** is kept; type a new one to change it."

    def _unmasked(self, name: str) -> Any:
        value = self.cleaned_data.get(name)
        stored = {} if self.instance._state.adding else (getattr(self.instance, name, None) or {})
        if isinstance(value, dict):
            return {k: stored.get(k, v) if v == SECRET_MASK else v for k, v in value.items()}
        return value

    def clean_env(self) -> Any:
        return self._unmasked("env")

    def clean_headers(self) -> Any:
        return self._unmasked("headers")


SECRET_FIELDS = ("env", "headers")


@admin.register(MCPServer)
class MCPServerAdmin(admin.ModelAdmin):
    form = MCPServerForm
    list_display = (
        "id",
        "name",
        "transport",
        "enabled",
        "status",
        "tool_count",
        "protocol_version",
        "last_seen",
        "last_error",
    )
    actions = ["reconnect"]
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
        ("Calls and logs", {"fields": ("default_arguments", "log_files", "log_retention")}),
        ("State", {"fields": readonly_fields}),
    )
    inlines = [ToolInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request: HttpRequest, obj: MCPServer, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        async_to_sync(rpc.notify)("discover", {})  # the gateway connects (or reconnects) now

    # Who does not manage servers sees the connection's secrets masked (mcps/masking.py),
    # and cannot search by url or command line (a search is an oracle for a secret).
    MASKED = {"url": "shown_url", "args": "shown_args", "env": "shown_env", "headers": "shown_headers"}

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if roles.can(request.user, roles.MANAGE_SERVERS):
            return fieldsets
        return [
            (name, {**options, "fields": tuple(self.MASKED.get(f, f) for f in options["fields"])})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if roles.can(request.user, roles.MANAGE_SERVERS) else (*fields, *self.MASKED.values())

    def get_search_fields(self, request: HttpRequest) -> Any:
        if roles.can(request.user, roles.MANAGE_SERVERS):
            return self.search_fields
        return tuple(f for f in self.search_fields if f not in ("command", "url"))

    @admin.display(description="URL")
    def shown_url(self, obj: MCPServer) -> str:
        return str(obj.connection_for(None)["url"])

    @admin.display(description="Args")
    def shown_args(self, obj: MCPServer) -> str:
        return " ".join(obj.connection_for(None)["args"])

    @admin.display(description="Env")
    def shown_env(self, obj: MCPServer) -> dict[str, str]:
        return dict(obj.connection_for(None)["env"])

    @admin.display(description="Headers")
    def shown_headers(self, obj: MCPServer) -> dict[str, str]:
        return dict(obj.connection_for(None)["headers"])

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str]:
        return {"source": MCPServer.Source.ADMIN, "transport": MCPServer.Transport.STDIO}

    def get_queryset(self, request: HttpRequest) -> QuerySet[MCPServer]:
        return super().get_queryset(request).annotate(tools_in_catalog=Count("tools"))

    @admin.display(description="tools", ordering="tools_in_catalog")
    def tool_count(self, obj: Any) -> int:
        return obj.tools_in_catalog

    def has_reconnect_permission(self, request: HttpRequest) -> bool:
        """The reconnect action asks what POST /api/mcps/{id}/reconnect asks: an operator."""
        return roles.can(request.user, roles.RECONNECT)

    @admin.action(description="Reconnect selected servers", permissions=["reconnect"])
    def reconnect(self, request: HttpRequest, queryset: QuerySet[MCPServer]) -> None:
        """Drop and reopen each managed server's session, as POST /api/mcps/{id}/reconnect does."""
        done: list[str] = []
        for server in queryset.managed():
            try:
                async_to_sync(rpc.request)("reconnect", {"mcp_id": server.id}, timeout=10)
            except rpc.GatewayError as exc:
                self.message_user(request, f"{server.id}: {exc.reason}", messages.ERROR)
                if isinstance(exc, rpc.GatewayDown):
                    break  # every other server would get the same answer
            else:
                done.append(server.id)
        if done:
            self.message_user(request, f"Reconnecting {', '.join(done)}.", messages.SUCCESS)
        skipped = queryset.exclude(id__in=queryset.managed().values("id")).count()
        if skipped:
            note = f"Skipped {skipped} server(s) that only push events."
            self.message_user(request, note, messages.WARNING)


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

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[IngestKey]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
