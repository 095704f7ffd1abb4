"""Shapes of /api/internal/: what each endpoint takes and answers (also the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from automations.inputs import InputError, coerce
from automations.models import Automation, Directive, DirectiveExecution, KnowledgeEntry


class DirectiveSerializer(serializers.Serializer[Directive]):
    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    system = serializers.BooleanField()
    enabled = serializers.BooleanField()
    permissions = serializers.ListField(child=serializers.CharField())
    inputs = serializers.DictField()
    scripts = serializers.ListField(child=serializers.CharField())
    tools = serializers.ListField(child=serializers.CharField(), help_text="server/tool")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DirectiveDetailSerializer(DirectiveSerializer):
    source = serializers.CharField(help_text="The directive's YAML.")


class DirectiveWriteSerializer(serializers.Serializer[Directive]):
    source = serializers.CharField(
        trim_whitespace=False, help_text="The directive's YAML (name, version, inputs, permissions, steps)."
    )
    enabled = serializers.BooleanField(required=False)


class DirectiveUpdateSerializer(DirectiveWriteSerializer):
    source = serializers.CharField(required=False, trim_whitespace=False, help_text="The directive's YAML.")


class ScriptSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    description = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())
    parameters = serializers.DictField(help_text="Parameter name -> default value.")


class ExecuteSerializer(serializers.Serializer[Any]):
    directive = serializers.CharField(required=False, help_text="The directive's name.")
    directive_name = serializers.CharField(required=False, help_text="The seed's spelling of `directive`.")
    inputs = serializers.DictField(required=False, default=dict)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        name = attrs.get("directive") or attrs.get("directive_name")
        if not name:
            raise serializers.ValidationError({"directive": ["required, the directive's name"]})
        directive = Directive.objects.filter(name=name).first()
        if directive is None:
            raise serializers.ValidationError({"directive": [f"no directive named {name!r}"]})
        if not directive.enabled:
            raise serializers.ValidationError({"directive": [f"{name!r} is disabled"]})
        try:
            coerce(directive.definition.get("inputs") or {}, attrs.get("inputs"))
        except InputError as exc:
            raise serializers.ValidationError(exc.errors) from None
        return {"directive": directive, "inputs": attrs.get("inputs") or {}}


class StepRunSerializer(serializers.Serializer[Any]):
    sequence = serializers.IntegerField()
    path = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["script", "tool", "foreach", "conditional", "steps"])
    status = serializers.CharField()
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    error = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField(allow_null=True)


class ExecutionSerializer(serializers.Serializer[DirectiveExecution]):
    id = serializers.IntegerField()
    directive = serializers.CharField()
    automation = serializers.IntegerField(allow_null=True)
    triggered_by = serializers.ChoiceField(choices=DirectiveExecution.Trigger.choices)
    trigger_info = serializers.DictField()
    inputs = serializers.DictField()
    result = serializers.JSONField(allow_null=True)
    status = serializers.ChoiceField(choices=DirectiveExecution.Status.choices)
    error = serializers.CharField()
    depth = serializers.IntegerField()
    started_by = serializers.CharField(allow_null=True, help_text="Its starter; null: a system run.")
    team = serializers.CharField(
        allow_null=True,
        help_text="The team whose rows it read and who see it; null: admins (and its starter).",
    )
    thread_id = serializers.CharField(allow_null=True)
    steps_run = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    resumes = serializers.IntegerField(help_text="How often it was taken up again after its worker was lost.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)


class ExecutionDetailSerializer(ExecutionSerializer):
    steps = StepRunSerializer(many=True)


class KnowledgeEntrySerializer(serializers.Serializer[KnowledgeEntry]):
    slug = serializers.CharField()
    title = serializers.CharField()
    category = serializers.ChoiceField(choices=KnowledgeEntry.Category.choices)
    content = serializers.CharField()
    confidence = serializers.FloatField()
    source_directive = serializers.CharField(allow_null=True)
    team = serializers.CharField(
        allow_null=True, help_text="The team whose rows it was computed from; null: admins' or shared."
    )
    shared = serializers.BooleanField(
        help_text="Shown to every user (written by hand, or about shared servers)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AutomationSerializer(serializers.ModelSerializer[Automation]):
    directive = serializers.SlugRelatedField(slug_field="name", queryset=Directive.objects.all())
    next_runs = serializers.SerializerMethodField(help_text="The next five times a schedule fires (UTC).")

    class Meta:
        model = Automation
        fields = [
            "id",
            "name",
            "directive",
            "trigger",
            "schedule",
            "event_type",
            "filters",
            "inputs",
            "enabled",
            "last_executed_at",
            "next_runs",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_executed_at", "created_at", "updated_at"]

    def get_next_runs(self, automation: Automation) -> list[str]:
        return [t.isoformat() for t in automation.next_runs(5)] if automation.enabled else []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fields = {
            f: getattr(self.instance, f)
            for f in self.Meta.fields
            if self.instance and hasattr(self.instance, f)
        }
        candidate = Automation(
            **{k: v for k, v in {**fields, **attrs}.items() if k not in ("id", "next_runs")}
        )
        problems = candidate.problems()
        if not problems:
            try:
                coerce(candidate.directive.definition.get("inputs") or {}, candidate.inputs)
            except InputError as exc:
                problems = exc.errors
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


def django_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict)
