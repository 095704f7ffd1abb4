"""One FilterSet per listed model: executions (status, directive, trigger, time) and knowledge."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from automations.models import DirectiveExecution, KnowledgeEntry
from missioncontrol.filters import CharInFilter, ChoiceInFilter, StrictFilterSet, time_range


class DirectiveExecutionFilterSet(StrictFilterSet):
    status = ChoiceInFilter(choices=DirectiveExecution.Status.choices)
    directive = CharInFilter(field_name="directive_name")
    triggered_by = ChoiceInFilter(choices=DirectiveExecution.Trigger.choices)
    automation = django_filters.NumberFilter(field_name="automation_id")
    locals().update(time_range("created_at"))

    class Meta:
        model = DirectiveExecution
        fields: list[str] = []


class KnowledgeEntryFilterSet(StrictFilterSet):
    category = ChoiceInFilter(choices=KnowledgeEntry.Category.choices)
    source = CharInFilter(field_name="source_directive__name")
    q = django_filters.CharFilter(method="search", label="Every word, in the title or content.")
    min_confidence = django_filters.NumberFilter(field_name="confidence", lookup_expr="gte")
    locals().update(time_range("updated_at"))

    class Meta:
        model = KnowledgeEntry
        fields: list[str] = []

    def search(self, queryset: QuerySet[KnowledgeEntry], name: str, value: str) -> QuerySet[KnowledgeEntry]:
        for word in value.split():
            queryset = queryset.filter(Q(title__icontains=word) | Q(content__icontains=word))
        return queryset
