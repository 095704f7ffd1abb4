"""No team reads another's data over GraphQL: every root field, walked.

The schema is read by introspection and each root field is asked for every field it
has, three levels deep (a thread's children, steps, logs; a directive's knowledge), as
bob (a viewer of beta) over `two_teams_everywhere`, where everything of alpha says
"apple". A root field that takes arguments names, in ARGUMENTS, the alpha row to ask
for: a new root field must be added there, and is walked from then on.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from missioncontrol.graphql.schema import schema
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db

ARGUMENTS = {
    "thread": '(id: "T-a")',
    "log": '(id: "log-T-a")',
    "permissionEvent": '(id: "check-T-a")',
    "mcpServer": '(id: "srv-alpha")',
    "directive": '(name: "learn")',
    "knowledgeEntry": '(slug: "alpha-entry")',
    "usage": '(window: "30d", groupBy: THREAD)',
}
DEPTH = 3


def _named(graphql_type: Any) -> Any:
    while hasattr(graphql_type, "of_type"):
        graphql_type = graphql_type.of_type
    return graphql_type


def selection(graphql_type: Any, depth: int, seen: frozenset[str] = frozenset()) -> str:
    """Every field of `graphql_type` that needs no argument, objects to `depth` levels."""
    named = _named(graphql_type)
    parts = []
    for name, field in named.fields.items():
        if any(arg.type.__class__.__name__ == "GraphQLNonNull" for arg in field.args.values()):
            continue
        inner = _named(field.type)
        if not hasattr(inner, "fields"):
            parts.append(name)
        elif depth > 0 and inner.name not in seen:
            parts.append(f"{name} {{ {selection(inner, depth - 1, seen | {named.name})} }}")
    return " ".join(parts) or "__typename"


def root_queries() -> dict[str, str]:
    root = schema._schema.query_type
    queries = {}
    for name, field in root.fields.items():
        required = [a for a, arg in field.args.items() if arg.type.__class__.__name__ == "GraphQLNonNull"]
        assert not required or name in ARGUMENTS, f"{name}: add the alpha row to ask for to ARGUMENTS"
        queries[name] = f"{{ {name}{ARGUMENTS.get(name, '')} {{ {selection(field.type, DEPTH)} }} }}"
    return queries


def ask(user: User, query: str) -> dict[str, Any]:
    response = signed_in(user).post("/graphql", {"query": query}, "application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert not body.get("errors"), (query, body["errors"])
    return body


def test_no_root_field_shows_a_beta_viewer_anything_of_alpha(
    two_teams_everywhere: dict[str, Any], outsider: User
) -> None:
    leaks = [name for name, query in root_queries().items() if "apple" in str(ask(outsider, query)).lower()]
    assert leaks == []


def test_the_walk_reaches_alphas_rows_for_alpha_and_everyones_for_admins(
    two_teams_everywhere: dict[str, Any], viewer: User, admin: User
) -> None:
    queries = root_queries()
    seen_by_alpha = {name for name, query in queries.items() if "apple" in str(ask(viewer, query)).lower()}
    assert {"thread", "threads", "log", "logs", "permissionEvent", "permissionEvents"} <= seen_by_alpha
    assert {"knowledgeEntry", "knowledgeEntries", "directive", "directives"} <= seen_by_alpha
    everything = str(ask(admin, queries["knowledgeEntries"])).lower()
    assert "apple" in everything and "banana" in everything and "nothing" in everything


def test_a_directives_knowledge_holds_only_what_the_user_may_see(
    two_teams_everywhere: dict[str, Any], outsider: User
) -> None:
    body = ask(outsider, '{ directive(name: "learn") { knowledge { slug } } }')
    assert [k["slug"] for k in body["data"]["directive"]["knowledge"]] == ["beta-entry"]
