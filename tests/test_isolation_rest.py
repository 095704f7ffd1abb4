"""No team reads another's data over REST or the pages, and no list can forget to check.

Every GET route of the OpenAPI schema and every page is walked as bob (a viewer of team
beta) over `two_teams_everywhere`, where everything of team alpha says "apple": no
answer may hold it. A new route with a path parameter must say in SAMPLES which alpha
row to ask for, so a new endpoint is walked too. Every model is either narrowed per
user (`visible_to`) or says why it is global (`global_because`), and a list over a
model that does neither fails instead of showing every team's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIRequestFactory, force_authenticate

from missioncontrol.filters import StrictFilterSet
from missioncontrol.listing import FilteredList
from missioncontrol.pagination import Keyset
from missioncontrol.visibility import is_scoped, visible_rows
from tests.conftest import make_user, signed_in
from tests.teams import content

pytestmark = pytest.mark.django_db

Made = dict[str, Any]
MARK = b"apple"  # everything of team alpha says it (its ids do not; searches ask for "appl")

# The alpha row (or, for shared data, any row) each route with a path parameter is asked for.
SAMPLES: dict[str, Callable[[Made], str]] = {
    "/api/threads/{thread_id}": lambda m: "/api/threads/T-a",
    "/api/threads/{thread_id}/children": lambda m: "/api/threads/T-a/children",
    "/api/threads/{thread_id}/timeline": lambda m: "/api/threads/T-a/timeline",
    "/api/threads/{thread_id}/transcript": lambda m: "/api/threads/T-a/transcript",
    "/api/sessions/{session_id}": lambda m: "/api/sessions/S-T-a",
    "/api/notifications/channels/{id}": lambda m: f"/api/notifications/channels/{m['alpha-channel'].pk}",
    "/api/notifications/channels/{id}/deliveries": lambda m: (
        f"/api/notifications/channels/{m['alpha-channel'].pk}/deliveries"
    ),
    "/api/logs/{log_id}": lambda m: "/api/logs/log-T-a",
    "/api/permissions/audit/{thread_id}": lambda m: "/api/permissions/audit/T-a",
    "/api/internal/executions/{id}": lambda m: f"/api/internal/executions/{m['alpha'].pk}",
    "/api/internal/knowledge/{slug}": lambda m: "/api/internal/knowledge/alpha-entry",
    "/api/internal/directives/{name}": lambda m: "/api/internal/directives/learn",
    "/api/internal/automations/{id}": lambda m: "/api/internal/automations/1",
    "/api/mcps/{mcp_id}": lambda m: "/api/mcps/srv-alpha",
    "/api/mcps/{mcp_id}/health": lambda m: "/api/mcps/srv-alpha/health",
    "/api/mcps/{mcp_id}/tools": lambda m: "/api/mcps/srv-alpha/tools",
    "/api/mcps/{mcp_id}/stats": lambda m: "/api/mcps/srv-alpha/stats?window=7d",
    "/api/kiwi/items/{id}": lambda m: "/api/kiwi/items/1",
    "/api/permissions/policies/{id}": lambda m: "/api/permissions/policies/1",
    "/api/tokens/{id}": lambda m: "/api/tokens/1",
    "/api/views/{id}": lambda m: "/api/views/00000000-0000-0000-0000-000000000000",
}
# Query strings a route is asked with (its required parameters, its other formats).
QUERIES: dict[str, list[str]] = {
    "/api/search": ["?q=appl", "?q=appl&kinds=knowledge"],
    "/api/graph/search": ["?q=appl"],
    "/api/graph/entities": ["", "?kind=knowledge", "?kind=thread"],
    "/api/graph/relationships": ["?entity=thread:T-a", "?entity=knowledge:alpha-entry"],
    "/api/logs/export": ["?format=csv", "?format=jsonl"],
    "/api/permissions/compliance": ["", "?format=csv"],
    "/api/internal/executions": ["", "?directive=learn"],
}
PAGE_SAMPLES: dict[str, Callable[[Made], str]] = {
    "threads/<str:thread_id>": lambda m: "/threads/T-a",
    "notifications/<int:pk>": lambda m: f"/notifications/{m['alpha-channel'].pk}",
    "sessions/<str:session_id>": lambda m: "/sessions/S-T-a",
    "executions/<int:pk>": lambda m: f"/executions/{m['alpha'].pk}",
    "executions/<int:pk>/live": lambda m: f"/executions/{m['alpha'].pk}/live",
    "knowledge/<slug:slug>": lambda m: "/knowledge/alpha-entry",
    "directives/<slug:name>": lambda m: "/directives/learn",
    "servers/<str:mcp_id>": lambda m: "/servers/srv-alpha",
    "servers/<str:mcp_id>/terminal": lambda m: "/servers/srv-alpha/terminal",
    "servers/<str:mcp_id>/edit": lambda m: "/servers/srv-alpha/edit",
    "servers/<str:mcp_id>/remove": lambda m: "/servers/srv-alpha/remove",
    "automations/<int:pk>": lambda m: "/automations/1",
    "kiwi/<slug:workspace>/<str:kind>/<str:name>": lambda m: "/kiwi/w/directive/x",
    "search": lambda m: "/search?q=appl",
}
# Pages that only act (POST) or belong to no one's data: not read here.
NOT_PAGES = ("accounts/", "settings/tokens/", "health", "metrics", "graphql", "admin/", "api/", "favicon.ico")
ACTIONS = ("/run", "/delete", "/test", "/enable")


def api_routes() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(path for path, operations in schema["paths"].items() if "get" in operations)


def api_urls(made: Made) -> Iterator[str]:
    for route in api_routes():
        if "{" in route:
            assert route in SAMPLES, f"{route}: add the path of an alpha row to SAMPLES"
            base = SAMPLES[route](made)
        else:
            base = route
        for query in QUERIES.get(route, [""]):
            yield base + query


def page_urls(made: Made) -> Iterator[str]:
    def walk(patterns: list[Any], prefix: str = "") -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    for route in dict.fromkeys(walk(get_resolver().url_patterns)):
        if route.startswith(NOT_PAGES) or route.endswith(ACTIONS):
            continue
        if "<" in route or route in PAGE_SAMPLES:
            assert route in PAGE_SAMPLES, f"{route}: add the path of an alpha row to PAGE_SAMPLES"
            yield PAGE_SAMPLES[route](made)
        else:
            yield "/" + route


def test_no_route_or_page_shows_a_beta_viewer_anything_of_alpha(
    two_teams_everywhere: Made, outsider: User
) -> None:
    bob = signed_in(outsider)
    answered, leaks = 0, []
    for url in [*api_urls(two_teams_everywhere), *page_urls(two_teams_everywhere)]:
        response = bob.get(url)
        assert response.status_code in (200, 403, 404), (url, response.status_code)
        if MARK in content(response).lower():
            leaks.append(url)
        answered += response.status_code == 200
    assert leaks == []
    assert answered >= 40  # the walk read real answers, not a wall of refusals


TEAM_LISTS = [
    "/api/threads",
    "/api/logs",
    "/api/logs/export?format=jsonl",
    "/api/permissions/audit",
    "/api/internal/executions",
    "/api/internal/knowledge",
    "/api/search?q=appl",
    "/api/graph/entities?kind=knowledge",
    "/threads",
    "/executions",
    "/knowledge",
    "/search?q=appl",
]


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin", "superuser"])
def test_each_role_of_alpha_reads_alphas_rows_and_only_admins_read_betas(
    two_teams_everywhere: Made, persona: str, request: pytest.FixtureRequest
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    sees_all = persona in ("admin", "superuser")
    for url in TEAM_LISTS:
        response = browser.get(url)
        body = content(response).lower()
        assert response.status_code == 200 and MARK in body, url
        assert (b"banana" in body) == sees_all or "q=" in url, url


def test_a_viewers_run_and_knowledge_lists_hold_its_team_and_what_is_shared(
    two_teams_everywhere: Made, outsider: User
) -> None:
    bob = signed_in(outsider)
    runs = bob.get("/api/internal/executions").json()["results"]
    assert [(r["id"], r["team"]) for r in runs] == [(two_teams_everywhere["beta"].pk, "beta")]
    slugs = {e["slug"] for e in bob.get("/api/internal/knowledge").json()["results"]}
    assert slugs == {"beta-entry", "shared-tip"}
    assert bob.get(f"/api/internal/executions/{two_teams_everywhere['system'].pk}").status_code == 404
    assert bob.get("/api/internal/knowledge/system-entry").status_code == 404


def test_the_directive_list_counts_only_the_knowledge_a_user_may_see(
    two_teams_everywhere: Made, outsider: User, admin: User
) -> None:
    def count(user: User) -> str:
        page = signed_in(user).get("/directives").content.decode()
        row = page[page.index('href="/directives/learn"') :].split("</tr>")[0]
        return row.split("<td>")[-2].split("</td>")[0]  # the knowledge column, before `updated`

    assert (count(outsider), count(admin)) == ("1", "3")


# --- the gate itself --------------------------------------------------------------------


OUR_APPS = {"threads", "logs", "audit", "mcps", "automations", "kiwi", "missioncontrol"}


def test_every_model_is_narrowed_per_user_or_says_why_it_is_global() -> None:
    unsaid = [
        m._meta.label
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS and not is_scoped(m) and not getattr(m, "global_because", "")
    ]
    assert unsaid == []


class _GroupFilterSet(StrictFilterSet):
    class Meta:
        model = Group
        fields: list[str] = []


class _ForgetfulList(FilteredList):
    """A list over a model with neither `visible_to` nor `global_because`."""

    filterset_class = _GroupFilterSet
    keyset = Keyset("id", default_limit=10, max_limit=10)

    def row(self, obj: Any) -> dict[str, Any]:  # type: ignore[override]
        return {"name": obj.name}


def test_a_list_over_a_model_that_says_nothing_of_teams_fails_instead_of_showing_all(
    viewer: User,
) -> None:
    request = APIRequestFactory().get("/forgetful")
    force_authenticate(request, viewer)
    with pytest.raises(ImproperlyConfigured, match="auth.Group has no visible_to"):
        _ForgetfulList.as_view()(request)
    with pytest.raises(ImproperlyConfigured):
        visible_rows(Group.objects.all(), viewer)


def test_a_user_without_a_role_reads_no_run_or_knowledge(two_teams_everywhere: Made) -> None:
    nobody = signed_in(make_user("nobody", None, "alpha"))
    for url in ("/api/internal/executions", "/api/internal/knowledge", "/executions"):
        assert nobody.get(url).status_code == 403, url
