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
BREAKDOWNS = (("model", "By model", "model"), ("server", "By server", "server"), ("user", "By user", "user"))


@login_required
def usage_page(request: HttpRequest) -> HttpResponse:
    window = WINDOWS.get(request.GET.get("window") or DEFAULT_WINDOW, WINDOWS[DEFAULT_WINDOW])
    prices, now = PriceTable.configured(), timezone.now()
    rows = visible(request, LLMUsage.objects.all())
    top_threads = report(rows, window, "thread", prices=prices, limit=TOP, now=now)
    in_window = rows.between(*window.bounds(now))  # type: ignore[attr-defined]
    context = {
        "report": top_threads,
        "window": window,
        "windows": WINDOWS.values(),
        "by": [(title, column, groups(in_window, key, prices, TOP)) for key, title, column in BREAKDOWNS],
        "priced_models": len(prices.exact) + len(prices.prefixes),
    }
    return render(request, "usage/usage.html", context)
