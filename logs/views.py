"""The log stream page: stored logs through the API's FilterSet, then a live tail."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from logs.filtersets import LogFilterSet
from logs.models import LogEntry
from missioncontrol.pages import list_page
from missioncontrol.pagination import Keyset

LIVE_FILTERS = ("threads", "mcps", "levels", "services", "search")


@login_required
def log_stream(request: HttpRequest) -> HttpResponse:
    keyset = Keyset("timestamp", default_limit=100)
    page = list_page(request, "logs", LogFilterSet, LogEntry.objects.all(), keyset)
    levels = set(page.filters.get("levels", "").split(","))
    # The live tail's server-side filter: the seed's LogFilter, lists of values.
    live = {
        name: (page.filters[name] if name == "search" else page.filters[name].split(","))
        for name in LIVE_FILTERS
        if page.filters.get(name)
    }
    context = {
        "page": page,
        "levels": [(level, level in levels) for level in LogEntry.Level.values],
        "live_filter": live,
        # A time filter asks for history only: the tail shows what arrives from now on.
        "live_ok": not page.problems and not any(k in page.filters for k in ("to", "to_timestamp")),
    }
    return render(request, "logs/stream.html", context)
