"""Admin for users, teams, API tokens (a token's secret is shown once, when it is added) and task runs.

Only a superuser grants privilege here: anyone else sees a user's superuser status,
groups (roles) and permissions read-only, may not change or delete a user holding
privilege it lacks (so not set that user's password either), and may not give a
token to such a user.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit import access
from missioncontrol import roles, tokens
from missioncontrol.logins import AdminSignInForm
from missioncontrol.models import APIToken, TaskRun, Team

# The admin console carries the product's name, not Django's.
admin.site.site_header = "Mission Control administration"
admin.site.site_title = "Mission Control admin"
admin.site.index_title = "Servers, threads, logs, audit and automations"
admin.site.site_url = "/"

# What only a superuser may change on a user.
PRIVILEGE_FIELDS = ("is_superuser", "groups", "user_permissions")

User = get_user_model()
admin.site.unregister(User)
admin.site.login_form = AdminSignInForm  # sign-ins throttled like every login path


@admin.register(User)
class MissionControlUserAdmin(UserAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, *PRIVILEGE_FIELDS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or roles.holds_no_more_than(obj, request.user))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or roles.holds_no_more_than(obj, request.user))


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
    list_display = ("name", "prefix", "owner", "team", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("team", "scope", "revoked_at")
    search_fields = ("name", "prefix", "owner__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "owner", "team", "scope", *readonly_fields)
    raw_id_fields = ("owner",)
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)

        class TokenForm(base):  # type: ignore[misc, valid-type]
            def clean_owner(self) -> Any:
                owner = self.cleaned_data.get("owner")
                try:
                    tokens.check_owner(request.user, owner)
                except tokens.MoreThanYours as exc:
                    raise forms.ValidationError(str(exc)) from None
                return owner

        return TokenForm

    def save_model(self, request: HttpRequest, obj: APIToken, form: Any, change: bool) -> None:
        raw = None if change else obj.new_secret()
        super().save_model(request, obj, form, change)
        if raw is not None:
            access.record(request.user, access.TOKEN_ISSUED, f"api_token:{obj.pk}", request=request)
            messages.warning(request, f"The token {obj.name!r} is shown once, copy it now: {raw}")

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[APIToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            access.record(request.user, access.TOKEN_REVOKED, f"api_token:{token.pk}", request=request)
