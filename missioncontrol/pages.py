"""What every HTML page shares: the shell's context, the one gate rows pass through, and
filtered lists read through the same FilterSets and keyset pages as the REST lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, QueryDict
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from missioncontrol.filters import StrictFilterSet
from missioncontrol.models import SavedView, UserPreference
from missioncontrol.pagination import Keyset
from missioncontrol.visibility import visible_rows

M = TypeVar("M", bound=Model)

# Query parameters a page understands that are not filters of its list.
PAGE_PARAMS = frozenset({"cursor", "limit", "view"})

# Keyboard shortcuts, shown by `?` and read by static/mc/shell.js from data attributes.
SHORTCUTS: tuple[tuple[str, str, str], ...] = (
    ("g d", "/", "Dashboard"),
    ("g t", "/threads", "Threads"),
    ("g l", "/logs", "Logs"),
    ("g s", "/servers", "Servers"),
    ("g g", "/graph", "Graph"),
    ("g p", "/permissions", "Permissions"),
    ("g a", "/directives", "Directives"),
    ("g u", "/automations", "Automations"),
    ("g e", "/executions", "Executions"),
    ("g k", "/knowledge", "Knowledge"),
    ("g w", "/kiwi", "Kiwi workspaces"),
    ("g n", "/notifications", "Notifications"),
    ("g c", "/usage", "LLM usage and cost"),
)

SINCE_CHOICES = (("15m", "15 minutes"), ("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"))

NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "/", "Dashboard"),
    ("threads", "/threads", "Threads"),
    ("sessions", "/sessions", "Sessions"),
    ("logs", "/logs", "Logs"),
    ("servers", "/servers", "Servers"),
    ("graph", "/graph", "Graph"),
    ("permissions", "/permissions", "Permissions"),
    ("directives", "/directives", "Directives"),
    ("automations", "/automations", "Automations"),
    ("executions", "/executions", "Executions"),
    ("knowledge", "/knowledge", "Knowledge"),
    ("kiwi", "/kiwi", "Kiwi"),
    ("usage", "/usage", "Usage"),
)


def visible(request: HttpRequest, queryset: QuerySet[M]) -> QuerySet[M]:
    """The rows of `queryset` the signed-in user may see (teams and roles).

    Every row of team data a page reads comes through here: the same `visible_to(user)`
    the REST API, GraphQL, exports and the WebSocket apply (missioncontrol.visibility).
    """
    return visible_rows(queryset, request.user)


def theme_of(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.pk is None:
        return UserPreference.Theme.SYSTEM
    preference = UserPreference.objects.filter(user=user).only("theme").first()
    return preference.theme if preference else UserPreference.Theme.SYSTEM


def shell(request: HttpRequest) -> dict[str, Any]:
    """Template context for base.html: navigation, shortcuts and the user's theme."""
    section = request.path.strip("/").split("/", 1)[0] or "dashboard"
    return {
        "nav": NAVIGATION,
        "nav_section": section,
        "shortcuts": SHORTCUTS,
        "shortcut_map": {keys: href for keys, href, _label in SHORTCUTS},
        "theme": theme_of(request),
        "since_choices": SINCE_CHOICES,
    }


@dataclass
class ListPage:
    """One page of a filtered list: rows, the filters as given, problems, and cursors."""

    rows: list[Any]
    filters: dict[str, str]
    problems: dict[str, list[str]]
    next: str | None = None
    previous: str | None = None
    views: list[SavedView] = field(default_factory=list)

    @property
    def querystring(self) -> str:
        query = QueryDict(mutable=True)
        query.update(self.filters)
        return query.urlencode()


def filters_of(request: HttpRequest, kind: str) -> dict[str, str]:
    """The list filters of the request; `?view=<id>` starts from that saved view's filters."""
    filters: dict[str, str] = {}
    view_id = request.GET.get("view")
    if view_id and request.user.is_authenticated:
        view = SavedView.objects.filter(user=request.user, pk=view_id).first() if _uuid(view_id) else None
        if view is not None and view.view_config.get("kind") == kind:
            filters.update(view.view_config.get("filters", {}))
    for name in request.GET:
        # Checkboxes send a parameter once per value; the lists take them comma-separated.
        values = [v for v in request.GET.getlist(name) if v != ""]
        if name not in PAGE_PARAMS and values:
            filters[name] = ",".join(values)
    return filters


def list_page(
    request: HttpRequest,
    kind: str,
    filterset_class: type[StrictFilterSet],
    queryset: QuerySet[Any],
    keyset: Keyset,
) -> ListPage:
    """The list `kind` as its REST endpoint would answer it, for a page to render."""
    filters = filters_of(request, kind)
    filterset = filterset_class(filters, queryset=visible(request, queryset))
    problems = filterset.problems()
    views = (
        list(SavedView.objects.filter(user=request.user, view_config__kind=kind).order_by("name"))
        if request.user.is_authenticated
        else []
    )
    if problems:
        return ListPage([], filters, problems, views=views)
    try:
        # Cursor links keep the request's own query (a `view` included) and move `cursor`.
        page = keyset.paginate(filterset.qs, Request(request))
    except ValidationError as exc:  # a tampered cursor or limit: say so, as the API's 400 does
        detail = exc.detail if isinstance(exc.detail, dict) else {"cursor": exc.detail}
        return ListPage([], filters, {k: [str(r) for r in v] for k, v in detail.items()}, views=views)
    # "Newer" only once the reader has paged away from the newest rows.
    previous = _relative(page.previous) if request.GET.get("cursor") else None
    return ListPage(page.rows, filters, {}, _relative(page.next), previous, views)


def _relative(url: str | None) -> str | None:
    if url is None:
        return None
    return "?" + url.split("?", 1)[1] if "?" in url else None


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
