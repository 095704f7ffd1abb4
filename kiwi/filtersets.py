"""One FilterSet per listed model: Kiwi items (kind, workspace, name, broken, text)."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from kiwi.models import KiwiItem
from missioncontrol.filters import CharInFilter, ChoiceInFilter, StrictFilterSet


class KiwiItemFilterSet(StrictFilterSet):
    kind = ChoiceInFilter(choices=KiwiItem.Kind.choices)
    workspace = CharInFilter(field_name="workspace__name")
    name = CharInFilter(field_name="name")
    broken = django_filters.BooleanFilter(
        method="filter_broken", label="Only files that did not parse (or only those that did)."
    )
    q = django_filters.CharFilter(method="search", label="Every word, in the name, title or description.")

    class Meta:
        model = KiwiItem
        fields: list[str] = []

    def filter_broken(
        self, queryset: QuerySet[KiwiItem], name: str, value: bool | None
    ) -> QuerySet[KiwiItem]:
        if value is None:
            return queryset
        return queryset.broken() if value else queryset.valid()

    def search(self, queryset: QuerySet[KiwiItem], name: str, value: str) -> QuerySet[KiwiItem]:
        for word in value.split():
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(title__icontains=word) | Q(description__icontains=word)
            )
        return queryset
