"""GraphQL of directives and knowledge: by name or slug, filtered, paged, in a fixed count of queries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from automations.models import Directive, KnowledgeEntry
from tests.conftest import AUTH_QUERIES, BASE_TIME

pytestmark = pytest.mark.django_db

# A script and a tool in nested steps, the tool in each spelling.
MONITOR = """
name: monitor_thread_health
version: 1.0.0
description: Detect stalled or crashed threads
steps:
  - script: query_active_threads.py
  - foreach: active_threads
    steps:
      - script: check_thread_health.py
      - conditional:
          if: "{{ result.status == 'stalled' }}"
          then:
            script: alert_stalled_thread.py
          else:
            - tool: git__git_log
            - server: time
              tool: get_current_time
  - script: query_active_threads
"""


def query(client: Client, text: str, **variables: Any) -> dict[str, Any]:
    """The data of a query that must succeed."""
    response = client.post(
        reverse("graphql"),
        json.dumps({"query": text, "variables": variables}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def directive(name: str, description: str = "", *, system: bool = False, enabled: bool = True) -> Directive:
    text = f"name: {name}\ndescription: {description}\nsteps:\n  - script: {name}_script\n"
    found = Directive.objects.upsert_from_yaml(text, system=system)
    if not enabled:
        Directive.objects.filter(pk=found.pk).update(enabled=False)
    return found


def knowledge(
    title: str,
    minutes: float = 0,
    *,
    source: Directive | None = None,
    category: str = KnowledgeEntry.Category.PATTERN,
    confidence: float = 0.5,
    content: str = "",
) -> KnowledgeEntry:
    """An entry last updated `minutes` after a fixed base, so order is explicit in tests."""
    entry = KnowledgeEntry.objects.create(
        title=title, category=category, confidence=confidence, content=content, source_directive=source
    )
    # `updated_at` is auto_now: set it afterwards, past save().
    KnowledgeEntry.objects.filter(pk=entry.pk).update(updated_at=BASE_TIME + timedelta(minutes=minutes))
    return entry


DIRECTIVE = """query ($name: String!) {
  directive(name: $name) {
    name version description source definition system enabled createdAt updatedAt
    scriptNames toolRefs { server tool }
    knowledge { slug title sourceDirective { name } }
  }
}"""


def test_it_serves_a_directive_with_its_scripts_tools_and_knowledge(client: Client) -> None:
    monitor = Directive.objects.upsert_from_yaml(MONITOR)
    knowledge("Stalled threads cluster at night", 1, source=monitor)
    knowledge("Retry slow tools once", 2, source=monitor)
    knowledge("Someone else's finding", 3)

    found = query(client, DIRECTIVE, name="monitor_thread_health")["directive"]

    assert (found["name"], found["version"], found["system"], found["enabled"]) == (
        "monitor_thread_health",
        "1.0.0",
        False,
        True,
    )
    assert found["description"] == "Detect stalled or crashed threads"
    assert found["source"] == MONITOR
    assert found["definition"]["steps"][0] == {"script": "query_active_threads.py"}
    assert found["scriptNames"] == [
        "query_active_threads",
        "check_thread_health",
        "alert_stalled_thread",
    ]
    assert found["toolRefs"] == [
        {"server": "git", "tool": "git_log"},
        {"server": "time", "tool": "get_current_time"},
    ]
    assert found["knowledge"] == [
        {
            "slug": "retry-slow-tools-once",
            "title": "Retry slow tools once",
            "sourceDirective": {"name": "monitor_thread_health"},
        },
        {
            "slug": "stalled-threads-cluster-at-night",
            "title": "Stalled threads cluster at night",
            "sourceDirective": {"name": "monitor_thread_health"},
        },
    ]


def test_it_reads_a_knowledge_entry_by_slug_with_the_directive_that_produced_it(client: Client) -> None:
    monitor = Directive.objects.upsert_from_yaml(MONITOR)
    knowledge(
        "Stalled threads cluster at night",
        source=monitor,
        category=KnowledgeEntry.Category.ALERT,
        confidence=0.9,
        content="Seen after [[nightly-backup]].",
    )

    found = query(
        client,
        """{ knowledgeEntry(slug: "stalled-threads-cluster-at-night") {
             title slug category content confidence createdAt updatedAt
             sourceDirective { name scriptNames } } }""",
    )["knowledgeEntry"]

    assert found["title"] == "Stalled threads cluster at night"
    assert (found["category"], found["confidence"]) == ("alert", 0.9)
    assert found["content"] == "Seen after [[nightly-backup]]."
    assert found["updatedAt"] == BASE_TIME.isoformat()
    assert found["sourceDirective"]["name"] == "monitor_thread_health"
    assert found["sourceDirective"]["scriptNames"][0] == "query_active_threads"


def test_it_answers_null_for_an_unknown_name_or_slug(client: Client) -> None:
    directive("nightly_backup")
    knowledge("Backups run long")
    data = query(client, '{ directive(name: "nope") { name } knowledgeEntry(slug: "nope") { slug } }')
    assert data == {"directive": None, "knowledgeEntry": None}


def test_it_serves_a_directive_without_knowledge_scripts_or_tools(client: Client) -> None:
    Directive.objects.upsert_from_yaml("name: just_wait\nsteps:\n  - conditional: {if: false, then: []}\n")
    found = query(client, DIRECTIVE, name="just_wait")["directive"]
    assert (found["scriptNames"], found["toolRefs"], found["knowledge"]) == ([], [], [])
    assert found["version"] == "" and found["description"] == ""


DIRECTIVES = """query ($filters: DirectiveFilter) {
  directives(filters: $filters) { totalCount results { name } } }"""


def names(client: Client, **filters: Any) -> list[str]:
    return [d["name"] for d in query(client, DIRECTIVES, filters=filters)["directives"]["results"]]


@pytest.fixture
def directives(db: None) -> None:
    directive("monitor_thread_health", "Detect stalled threads", system=True)
    directive("nightly_backup", "Copy the database offsite")
    directive("cleanup_logs", "Drop logs older than a month", system=True, enabled=False)
    directive("alice_digest", "Mail Alice the stalled THREADS of the day", enabled=False)


def test_it_lists_directives_by_name(client: Client, directives: None) -> None:
    assert names(client) == ["alice_digest", "cleanup_logs", "monitor_thread_health", "nightly_backup"]


def test_it_filters_directives_by_system_and_enabled(client: Client, directives: None) -> None:
    assert names(client, system=True) == ["cleanup_logs", "monitor_thread_health"]
    assert names(client, system=False) == ["alice_digest", "nightly_backup"]
    assert names(client, enabled=True) == ["monitor_thread_health", "nightly_backup"]
    assert names(client, enabled=False) == ["alice_digest", "cleanup_logs"]
    assert names(client, system=True, enabled=True) == ["monitor_thread_health"]


def test_it_searches_directives_by_name_and_description_in_any_case(client: Client, directives: None) -> None:
    assert names(client, search="stalled") == ["alice_digest", "monitor_thread_health"]
    assert names(client, search="BACKUP") == ["nightly_backup"]
    assert names(client, search="stalled", enabled=True) == ["monitor_thread_health"]
    assert names(client, search="nothing like it") == []


KNOWLEDGE = """query ($filters: KnowledgeEntryFilter) {
  knowledgeEntries(filters: $filters) { totalCount results { slug } } }"""


def slugs(client: Client, **filters: Any) -> list[str]:
    found = query(client, KNOWLEDGE, filters=filters)["knowledgeEntries"]["results"]
    return [entry["slug"] for entry in found]


@pytest.fixture
def entries(db: None) -> None:
    monitor = directive("monitor_thread_health")
    backup = directive("nightly_backup")
    Category = KnowledgeEntry.Category
    knowledge("Stalled at night", 1, source=monitor, category=Category.ALERT, confidence=0.9)
    knowledge("Retry slow tools", 3, source=monitor, category=Category.BEST_PRACTICE, confidence=0.6)
    knowledge("Backups run long", 2, source=backup, category=Category.PATTERN, content="Threads stall then.")
    # Updated at the same moment as "retry-slow-tools": the slug breaks the tie.
    knowledge("Compress before copying", 3, category=Category.OPTIMIZATION, confidence=0.3)


def test_it_lists_knowledge_latest_updated_first_then_by_slug(client: Client, entries: None) -> None:
    assert slugs(client) == [
        "compress-before-copying",
        "retry-slow-tools",
        "backups-run-long",
        "stalled-at-night",
    ]


def test_it_filters_knowledge_by_category_confidence_and_source_directive(
    client: Client, entries: None
) -> None:
    assert slugs(client, categories=["alert", "pattern"]) == ["backups-run-long", "stalled-at-night"]
    assert slugs(client, categories=["optimization"]) == ["compress-before-copying"]
    assert slugs(client, minConfidence=0.6) == ["retry-slow-tools", "stalled-at-night"]
    assert slugs(client, minConfidence=0.95) == []
    assert slugs(client, sourceDirective="monitor_thread_health") == ["retry-slow-tools", "stalled-at-night"]
    assert slugs(client, sourceDirective="nope") == []


def test_it_searches_knowledge_by_title_and_content_in_any_case(client: Client, entries: None) -> None:
    assert slugs(client, search="stall") == ["backups-run-long", "stalled-at-night"]
    assert slugs(client, search="COPY") == ["compress-before-copying"]


def test_it_combines_knowledge_filters(client: Client, entries: None) -> None:
    assert slugs(client, sourceDirective="monitor_thread_health", minConfidence=0.7) == ["stalled-at-night"]
    assert slugs(client, categories=["pattern", "alert"], search="stall", minConfidence=0.7) == [
        "stalled-at-night"
    ]


def test_it_pages_the_knowledge_inside_a_directive(client: Client) -> None:
    monitor = directive("monitor_thread_health")
    for n in range(101):
        knowledge(f"Finding {n:03}", n, source=monitor)

    found = query(
        client,
        """{ directive(name: "monitor_thread_health") {
             second: knowledge(pagination: {offset: 1, limit: 2}) { slug }
             all: knowledge { slug } } }""",
    )["directive"]

    assert found["second"] == [{"slug": "finding-099"}, {"slug": "finding-098"}]
    assert len(found["all"]) == 100 and found["all"][-1] == {"slug": "finding-001"}


DIRECTIVES_IN_FULL = """{
  directives {
    totalCount
    results {
      name definition scriptNames toolRefs { server tool }
      knowledge { slug confidence sourceDirective { name } }
    }
  }
}"""

KNOWLEDGE_IN_FULL = """{
  knowledgeEntries {
    totalCount
    results { slug category sourceDirective { name enabled scriptNames toolRefs { tool } } }
  }
}"""


def seed_directives(count: int) -> None:
    """`count` directives calling a script and a tool, each with two knowledge entries."""
    for n in range(count):
        source = Directive.objects.upsert_from_yaml(
            f"name: directive_{n:02}\nsteps:\n  - script: script_{n}\n  - tool: git__git_log\n"
        )
        knowledge(f"Finding {n:02} a", n, source=source)
        knowledge(f"Finding {n:02} b", n, source=source)


@pytest.mark.parametrize("count", [3, 30])
def test_it_reads_a_page_of_directives_with_their_knowledge_in_three_queries(
    client: Client, count: int, django_assert_num_queries: Any
) -> None:
    seed_directives(count)
    # count, directives, knowledge (with its source directive joined).
    with django_assert_num_queries(3 + AUTH_QUERIES):
        found = query(client, DIRECTIVES_IN_FULL)["directives"]
    assert found["totalCount"] == count
    assert all(len(d["knowledge"]) == 2 for d in found["results"])
    first = found["results"][0]
    assert first["scriptNames"] == ["script_0"]
    assert first["toolRefs"] == [{"server": "git", "tool": "git_log"}]
    assert first["knowledge"][0]["sourceDirective"] == {"name": "directive_00"}


@pytest.mark.parametrize("count", [3, 30])
def test_it_reads_a_page_of_knowledge_with_its_directives_in_two_queries(
    client: Client, count: int, django_assert_num_queries: Any
) -> None:
    seed_directives(count)
    # count, entries (with their source directive joined).
    with django_assert_num_queries(2 + AUTH_QUERIES):
        found = query(client, KNOWLEDGE_IN_FULL)["knowledgeEntries"]
    assert found["totalCount"] == count * 2
    assert found["results"][-1]["sourceDirective"] == {
        "name": "directive_00",
        "enabled": True,
        "scriptNames": ["script_0"],
        "toolRefs": [{"tool": "git_log"}],
    }
