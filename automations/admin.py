from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from automations import runs
from automations.inputs import InputError
from automations.models import Automation, Directive, DirectiveExecution, KnowledgeEntry, StepRun
from missioncontrol import roles
from missioncontrol.visibility import VisibleRowsAdmin


class KnowledgeInline(VisibleRowsAdmin, admin.TabularInline):
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
    actions = ["run_directive"]

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Running asks what POST /api/internal/execute asks: an operator."""
        return roles.can(request.user, roles.RUN_DIRECTIVE)

    @admin.action(description="Run the selected directives (default inputs)", permissions=["run"])
    def run_directive(self, request: HttpRequest, queryset: QuerySet[Directive]) -> None:
        for directive in queryset:
            try:
                execution = runs.start(request.user, directive, {}, request=request)
            except (InputError, runs.Refused) as exc:
                self.message_user(request, f"{directive.name}: {exc}", messages.ERROR)
                continue
            ran = f"Ran {directive.name}: execution {execution.pk} is {execution.status}"
            self.message_user(request, ran)


class StepRunInline(VisibleRowsAdmin, admin.TabularInline):
    model = StepRun
    fields = ("sequence", "path", "name", "kind", "status", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(DirectiveExecution)
class DirectiveExecutionAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "directive_name",
        "status",
        "triggered_by",
        "started_by",
        "team",
        "depth",
        "created_at",
        "duration_ms",
    )
    list_filter = ("status", "triggered_by", "team")
    search_fields = ("directive_name", "error", "thread_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in DirectiveExecution._meta.fields]
    inlines = [StepRunInline]
    actions = ["cancel_execution"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from a directive (its action), the API or an automation

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Cancelling asks what POST /api/internal/executions/{id}/cancel asks: an operator."""
        return roles.can(request.user, roles.RUN_DIRECTIVE)

    @admin.action(description="Cancel the selected executions", permissions=["cancel"])
    def cancel_execution(self, request: HttpRequest, queryset: QuerySet[DirectiveExecution]) -> None:
        from automations import engine

        asked = sum(1 for execution in queryset if engine.cancel(execution))
        self.message_user(request, f"{asked} execution(s) asked to stop; the others had finished.")


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    list_display = ("name", "directive", "trigger", "schedule", "event_type", "enabled", "last_executed_at")
    list_filter = ("trigger", "enabled")
    search_fields = ("name", "directive__name", "event_type")
    readonly_fields = ("last_executed_at", "created_at", "updated_at")


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(VisibleRowsAdmin, admin.ModelAdmin):
    list_display = (
        "title",
        "slug",
        "category",
        "confidence",
        "source_directive",
        "team",
        "shared",
        "updated_at",
    )
    list_filter = ("category", "source_directive", "team", "shared")
    search_fields = ("title", "slug", "content")
    prepopulated_fields = {"slug": ("title",)}
    date_hierarchy = "updated_at"
