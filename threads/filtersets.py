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
from threads.models import ExecutionStep, Session, Thread, ThreadQuerySet


class ThreadFilterSet(StrictFilterSet):
    status = ChoiceInFilter(choices=Thread.Status.choices)
    mcp = CharInFilter(field_name="mcp_id")
    parent = django_filters.CharFilter(field_name="parent_id")
    root = StrictBooleanFilter(field_name="parent", lookup_expr="isnull")
    session = django_filters.CharFilter(field_name="session_id")
    # true: threads with at least one failed step; false: those with none (their status aside).
    with_failures = StrictBooleanFilter(method="filter_with_failures")
    search = TextSearchFilter()
    locals().update(time_range("started_at"))

    class Meta:
        model = Thread
        fields: list[str] = []

    def filter_with_failures(self, queryset: ThreadQuerySet, name: str, value: bool | None) -> ThreadQuerySet:
        return queryset if value is None else queryset.with_failures(value)


class StepFilterSet(StrictFilterSet):
    """A timeline's steps: `/api/threads/<id>/timeline?status=error` lists its failed ones."""

    status = ChoiceInFilter(choices=ExecutionStep.Status.choices)
    step_type = ChoiceInFilter(choices=ExecutionStep.StepType.choices)

    class Meta:
        model = ExecutionStep
        fields: list[str] = []


class SessionFilterSet(StrictFilterSet):
    via = CharInFilter(field_name="via")
    # true: sessions not ended yet; false: ended ones.
    open = StrictBooleanFilter(field_name="ended_at", lookup_expr="isnull")
    locals().update(time_range("started_at"))

    class Meta:
        model = Session
        fields: list[str] = []
