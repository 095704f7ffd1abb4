from __future__ import annotations

from django.contrib import admin

from kiwi.models import KiwiItem, KiwiLink, KiwiWorkspace


@admin.register(KiwiWorkspace)
class KiwiWorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "root", "server", "source", "indexed_at", "last_error")
    list_filter = ("scope", "source")
    readonly_fields = ("indexed_at", "last_error")


class KiwiLinkInline(admin.TabularInline):
    model = KiwiLink
    fields = ("kind", "target", "target_kind")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(KiwiItem)
class KiwiItemAdmin(admin.ModelAdmin):
    """Read-only: items follow from the files (`manage.py index_kiwi`)."""

    list_display = ("name", "kind", "workspace", "version", "path", "error", "indexed_at")
    list_filter = ("kind", "workspace")
    search_fields = ("name", "title", "description", "path")
    inlines = [KiwiLinkInline]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
