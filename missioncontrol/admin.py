"""Admin for teams, API tokens (a token's secret is shown once, when it is added) and task runs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit import access
from missioncontrol.models import APIToken, TaskRun, Team

# The admin console carries the product's name, not Django's.
admin.site.site_header = "Mission Control administration"
admin.site.site_title = "Mission Control admin"
admin.site.index_title = "Servers, threads, logs, audit and automations"
admin.site.site_url = "/"


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "name", "status", "deliveries", "retries", "worker", "finished_at")
    list_filter = ("status", "name")
    search_fields = ("task_id", "name", "error", "args_digest")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in TaskRun._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "owner", "team", "created_at", "last_used_at", "revoked_at")
    list_filter = ("team", "revoked_at")
    search_fields = ("name", "prefix", "owner__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "owner", "team", *readonly_fields)
    raw_id_fields = ("owner",)
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: APIToken, form: Any, change: bool) -> None:
        raw = None if change else obj.new_secret()
        super().save_model(request, obj, form, change)
        if raw is not None:
            access.record(request.user, access.TOKEN_ISSUED, f"api_token:{obj.pk}", request=request)
            messages.warning(request, f"The token {obj.name!r} is shown once, copy it now: {raw}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            access.record(request.user, access.TOKEN_REVOKED, f"api_token:{token.pk}", request=request)
