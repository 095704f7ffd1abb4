"""REST for policy rules: `/api/permissions/policies` (CRUD).

Validation lives on the model (`PolicyRule.clean`), so the admin and the API answer
the same 400 `{field: [reason]}`. A change reaches every process's rule cache through
the model's signals (audit/policy.py).
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from audit import access
from audit.models import PolicyRule
from missioncontrol.openapi import FIELD_ERRORS, NOT_FOUND


class PolicyRuleSerializer(serializers.ModelSerializer[PolicyRule]):
    class Meta:
        model = PolicyRule
        fields = [
            "id",
            "subject_kind",
            "subject_value",
            "server",
            "tool",
            "action",
            "effect",
            "priority",
            "enabled",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        rule = copy.copy(self.instance) if self.instance is not None else PolicyRule()
        for name, value in attrs.items():
            setattr(rule, name, value)
        try:
            rule.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


_ONE = {200: PolicyRuleSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND}


@extend_schema_view(
    list=extend_schema(responses={200: PolicyRuleSerializer(many=True)}),
    create=extend_schema(responses={201: PolicyRuleSerializer, 400: FIELD_ERRORS}),
    retrieve=extend_schema(responses={200: PolicyRuleSerializer, 404: NOT_FOUND}),
    update=extend_schema(responses=_ONE),
    partial_update=extend_schema(responses=_ONE),
    destroy=extend_schema(responses={204: None, 404: NOT_FOUND}),
)
class PolicyRuleViewSet(viewsets.ModelViewSet[PolicyRule]):
    """Rules in evaluation order: higher priority first, deny before allow at a tie."""

    serializer_class = PolicyRuleSerializer
    queryset = PolicyRule.objects.all()
    pagination_class = None

    # Every change is in the access audit (who changed which rule, to what).
    def perform_create(self, serializer: Any) -> None:
        rule = serializer.save()
        self._audit("created", rule)

    def perform_update(self, serializer: Any) -> None:
        rule = serializer.save()
        self._audit("updated", rule)

    def perform_destroy(self, instance: PolicyRule) -> None:
        self._audit("deleted", instance)
        instance.delete()

    def _audit(self, change: str, rule: PolicyRule) -> None:
        access.record(
            self.request.user,
            access.POLICY_CHANGE,
            f"policy_rule:{rule.pk}",
            details={"change": change, "rule": str(rule)},
            request=self.request,
        )
