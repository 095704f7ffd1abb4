"""The usage page: tokens and cost over a window, charted, and who and what spent them."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from missioncontrol.pages import visible
from usage.models import LLMUsage
from usage.pricing import PriceTable
from usage.report import DEFAULT_WINDOW, WINDOWS, groups, report

TOP = 10


@login_required
def usage_page(request: HttpRequest) -> HttpResponse:
    window = WINDOWS.get(request.GET.get("window") or DEFAULT_WINDOW, WINDOWS[DEFAULT_WINDOW])
    prices, now = PriceTable.configured(), timezone.now()
    rows = visible(request, LLMUsage.objects.all())
    by_model = report(rows, window, "model", prices=prices, limit=TOP, now=now)
    in_window = rows.between(*window.bounds(now))  # type: ignore[attr-defined]
    context = {
        "report": by_model,
        "top_threads": groups(in_window, "thread", prices, TOP),
        "window": window,
        "windows": WINDOWS.values(),
        "by": [
            ("By model", "model", by_model["groups"]),
            ("By server", "server", groups(in_window, "server", prices, TOP)),
            ("By user", "user", groups(in_window, "user", prices, TOP)),
        ],
        "priced_models": len(prices.exact) + len(prices.prefixes),
    }
    return render(request, "usage/usage.html", context)
