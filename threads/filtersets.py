"""The one FilterSet of threads: REST lists, pages and saved views share it."""

from __future__ import annotations

import django_filters

from missioncontrol.filters import (
    CharInFilter,
    ChoiceInFilter,
    StrictBooleanFilter,
    StrictFilterSet,
    TextSearchFilter,
    time_range,
)
from threads.models import Thread


class ThreadFilterSet(StrictFilterSet):
    status = ChoiceInFilter(choices=Thread.Status.choices)
    mcp = CharInFilter(field_name="mcp_id")
    parent = django_filters.CharFilter(field_name="parent_id")
    root = StrictBooleanFilter(field_name="parent", lookup_expr="isnull")
    search = TextSearchFilter()
    locals().update(time_range("started_at"))

    class Meta:
        model = Thread
        fields: list[str] = []
