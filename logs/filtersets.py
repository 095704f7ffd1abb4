"""The one FilterSet of logs (the seed's LogFilter): REST, export, pages and saved views."""

from __future__ import annotations

from logs.models import LogEntry
from missioncontrol.filters import CharInFilter, ChoiceInFilter, StrictFilterSet, TextSearchFilter, time_range


class LogFilterSet(StrictFilterSet):
    threads = CharInFilter(field_name="thread_id")
    mcps = CharInFilter(field_name="mcp_id")
    levels = ChoiceInFilter(field_name="level", choices=LogEntry.Level.choices)
    services = CharInFilter(field_name="service")
    search = TextSearchFilter()
    locals().update(time_range("timestamp"))

    class Meta:
        model = LogEntry
        fields: list[str] = []
