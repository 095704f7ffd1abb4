"""What the analysis directives learn is findable: by search, and from its directive in the graph."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from automations import scripts
from automations.system import load_system_directives
from logs.models import LogEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def learned() -> str:
    """analyze_patterns' error clustering over three refused connections; the entry's slug."""
    load_system_directives()
    now = timezone.now()
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                id=f"e{i}",
                timestamp=now - timedelta(hours=i + 1),
                level="ERROR",
                service="db",
                mcp_id="pg",
                message=f"connection to 10.0.0.{i}:5432 refused after {i} retries",
            )
            for i in range(3)
        ]
    )
    script = scripts.get("analyze_error_clusters")
    assert script is not None
    [cluster] = script.run({"lookback_days": 7})["clusters"]
    return str(cluster["key"])


def test_an_analysis_finding_is_found_by_words_of_its_content(client: Client, learned: str) -> None:
    response = client.get("/api/search", {"q": "refused retries", "kinds": "knowledge"})
    assert response.status_code == 200, response.content
    [hit] = response.json()["results"]
    assert (hit["kind"], hit["id"]) == ("knowledge", learned)
    assert hit["title"] == "Error cluster: connection to <n>.<n>.<n>.<n>:<n> refused after <n> retries"
    assert hit["snippet"].startswith("3 ERROR lines over the last 7 days from db")
    assert client.get("/api/search", {"q": "refused -retries", "kinds": "knowledge"}).json()["results"] == []


def test_a_finding_is_linked_to_the_directive_that_produced_it(client: Client, learned: str) -> None:
    response = client.get(
        "/api/graph/relationships", {"entity": "directive:analyze_patterns", "kind": "produced,runs"}
    )
    assert response.status_code == 200, response.content
    edges = {(e["kind"], e["target"]) for e in response.json()["results"]}
    assert ("produced", f"knowledge:{learned}") in edges
    assert {
        ("runs", "script:analyze_duration_patterns"),
        ("runs", "script:analyze_denial_patterns"),
        ("runs", "script:analyze_connection_failures"),
        ("runs", "script:analyze_error_clusters"),
    } <= edges
    scripts_listed = client.get("/api/graph/entities", {"kind": "script"}).json()["results"]
    assert all(s["data"]["registered"] for s in scripts_listed)
