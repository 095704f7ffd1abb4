from __future__ import annotations

from django.contrib import admin

from automations.models import Directive, KnowledgeEntry


class KnowledgeInline(admin.TabularInline):
    model = KnowledgeEntry
    fields = ("title", "category", "confidence", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Directive)
class DirectiveAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "description", "system", "enabled", "updated_at")
    list_filter = ("system", "enabled")
    search_fields = ("name", "description", "source")
    # Everything but `enabled` follows from the YAML (see Directive.clean).
    fields = ("source", "enabled", "name", "version", "description", "system", "created_at", "updated_at")
    readonly_fields = ("name", "version", "description", "system", "created_at", "updated_at")
    inlines = [KnowledgeInline]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "category", "confidence", "source_directive", "updated_at")
    list_filter = ("category", "source_directive")
    search_fields = ("title", "slug", "content")
    prepopulated_fields = {"slug": ("title",)}
    date_hierarchy = "updated_at"
