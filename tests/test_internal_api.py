"""/api/internal/: directives from YAML, scripts, execute, executions, automations, knowledge."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from automations.models import Automation, Directive, DirectiveExecution, KnowledgeEntry

pytestmark = pytest.mark.django_db
UNDECLARED = "which the directive's permissions do not include"

SUMMARY = """name: summary
version: 1.2.0
description: Threads, logs and denials
permissions: ["read:*"]
inputs:
  hours: {type: number, default: 24}
steps:
  - script: generate_summary
    inputs: {window_hours: "{{ inputs.hours }}"}
"""


def post(client: Client, path: str, body: Any) -> Any:
    return client.post(path, body, content_type="application/json")


def put(client: Client, path: str, body: Any) -> Any:
    return client.put(path, body, content_type="application/json")


def test_it_creates_lists_reads_updates_and_deletes_a_directive(client: Client) -> None:
    created = post(client, "/api/internal/directives", {"source": SUMMARY})
    assert created.status_code == 201, created.content
    assert created.json()["name"] == "summary" and created.json()["scripts"] == ["generate_summary"]
    listed = client.get("/api/internal/directives").json()
    assert [(d["name"], d["version"], d["permissions"], d["inputs"]) for d in listed] == [
        ("summary", "1.2.0", ["read:*"], {"hours": {"type": "number", "default": 24}})
    ]
    assert client.get("/api/internal/directives/summary").json()["source"] == SUMMARY
    updated = put(client, "/api/internal/directives/summary", {"source": SUMMARY.replace("1.2.0", "1.3.0")})
    assert updated.status_code == 200 and updated.json()["version"] == "1.3.0"
    assert put(client, "/api/internal/directives/summary", {"enabled": False}).json()["enabled"] is False
    assert client.delete("/api/internal/directives/summary").status_code == 204
    assert client.get("/api/internal/directives/summary").status_code == 404


@pytest.mark.parametrize(
    ("source", "errors"),
    [
        (
            "name: x\nsteps:\n  - script: generate_summary\n    wait: 3\n",
            {"source": ["line 4, column 5: steps[0].wait: unknown key 'wait'"]},
        ),
        (
            "name: x\npermissions: [read:threads]\nsteps:\n"
            "  - script: generate_summary\n  - tool: git__git_log\n",
            {
                "steps[0]": [
                    f"script 'generate_summary' needs 'read:logs', {UNDECLARED}",
                    f"script 'generate_summary' needs 'read:permissions', {UNDECLARED}",
                ],
                "steps[1]": [
                    "tool call needs 'execute:git/git_log', which the directive's permissions do not include"
                ],
            },
        ),
        (
            "name: x\nsteps: [{script: no_such_script}]",
            {"steps[0]": ["no script named 'no_such_script' (see GET /api/internal/scripts)"]},
        ),
    ],
)
def test_it_refuses_a_directive_naming_the_line_or_the_step(client: Client, source: str, errors: Any) -> None:
    response = post(client, "/api/internal/directives", {"source": source})
    assert response.status_code == 400
    assert response.json() == errors
    assert not Directive.objects.exists()


def test_system_directives_are_read_only(client: Client) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY, system=True)
    assert put(client, "/api/internal/directives/summary", {"enabled": False}).status_code == 403
    assert client.delete("/api/internal/directives/summary").status_code == 403
    taken = post(client, "/api/internal/directives", {"source": SUMMARY})
    assert taken.status_code == 400
    assert taken.json() == {
        "source": ["a directive named 'summary' is a system directive; give yours another name"]
    }


def test_it_lists_the_scripts_with_their_parameters_and_permissions(client: Client) -> None:
    listed = {s["name"]: s for s in client.get("/api/internal/scripts").json()}
    assert listed["generate_summary"]["permissions"] == ["read:threads", "read:logs", "read:permissions"]
    assert listed["cleanup_old_logs"]["parameters"] == {"max_age_days": 30}


def test_execute_answers_202_with_the_execution_then_it_reads_with_its_steps(client: Client) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY)
    response = post(client, "/api/internal/execute", {"directive": "summary", "inputs": {"hours": "2"}})
    assert response.status_code == 202, response.content
    execution = response.json()
    assert (execution["directive"], execution["triggered_by"], execution["inputs"]) == (
        "summary",
        "manual",
        {"hours": 2},
    )
    detail = client.get(f"/api/internal/executions/{execution['id']}").json()
    assert detail["status"] == "completed"
    assert [(s["path"], s["kind"], s["status"]) for s in detail["steps"]] == [
        ("steps[0]", "script", "completed")
    ]
    assert detail["steps"][0]["input"] == {"window_hours": 2}
    assert detail["result"]["threads"]["total"] >= 0
    seed_spelling = post(client, "/api/internal/execute", {"directive_name": "summary"})
    assert seed_spelling.status_code == 202


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"directive": ["required, the directive's name"]}),
        ({"directive": "nope"}, {"directive": ["no directive named 'nope'"]}),
        (
            {"directive": "summary", "inputs": {"hours": "lots", "x": 1}},
            {
                "inputs.hours": ["expected a number, not 'lots'"],
                "inputs.x": ["unknown input (this directive takes: hours)"],
            },
        ),
        (
            {"directive": "summary", "inputs": [1]},
            {"inputs": ['Expected a dictionary of items but got type "list".']},
        ),
    ],
)
def test_execute_names_each_bad_field(client: Client, body: Any, errors: Any) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY)
    response = post(client, "/api/internal/execute", body)
    assert response.status_code == 400
    assert response.json() == errors
    assert not DirectiveExecution.objects.exists()


def test_execute_answers_429_while_the_directive_runs_its_maximum(client: Client, settings: Any) -> None:
    settings.DIRECTIVE_MAX_CONCURRENT = 1
    directive = Directive.objects.upsert_from_yaml(SUMMARY)
    DirectiveExecution.objects.create(directive=directive, directive_name="summary", status="running")
    response = post(client, "/api/internal/execute", {"directive": "summary"})
    assert response.status_code == 429 and response["Retry-After"] == "10"


def test_executions_filter_and_cancel(client: Client) -> None:
    directive = Directive.objects.upsert_from_yaml(SUMMARY)
    done = post(client, "/api/internal/execute", {"directive": "summary"}).json()
    waiting = DirectiveExecution.objects.create(directive=directive, directive_name="summary")
    listed = client.get("/api/internal/executions", {"status": "pending"}).json()["results"]
    assert [e["id"] for e in listed] == [waiting.pk]
    assert client.get("/api/internal/executions", {"statuz": "x"}).json() == {
        "statuz": ["Unknown parameter."]
    }
    cancelled = post(client, f"/api/internal/executions/{waiting.pk}/cancel", {})
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert post(client, f"/api/internal/executions/{done['id']}/cancel", {}).status_code == 409
    assert post(client, "/api/internal/executions/999/cancel", {}).status_code == 404


def test_automations_crud_with_a_next_run_preview(client: Client) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY)
    body = {
        "name": "nightly",
        "directive": "summary",
        "trigger": "schedule",
        "schedule": "0 3 * * *",
        "inputs": {"hours": 24},
    }
    created = post(client, "/api/internal/automations", body)
    assert created.status_code == 201, created.content
    runs = created.json()["next_runs"]
    assert len(runs) == 5 and all(r.endswith("T03:00:00+00:00") for r in runs)
    pk = created.json()["id"]
    patched = client.patch(
        f"/api/internal/automations/{pk}", {"schedule": "30 * * * *"}, content_type="application/json"
    )
    assert patched.status_code == 200 and patched.json()["next_runs"][0].endswith(":30:00+00:00")
    assert [a["name"] for a in client.get("/api/internal/automations").json()] == ["nightly"]
    assert client.delete(f"/api/internal/automations/{pk}").status_code == 204
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trigger": "schedule", "schedule": "every night"}, "schedule"),
        ({"trigger": "event"}, "event_type"),
        ({"trigger": "schedule", "schedule": "* * * * *", "inputs": {"hours": "many"}}, "inputs.hours"),
        ({"trigger": "schedule", "schedule": "* * * * *", "directive": "nope"}, "directive"),
    ],
)
def test_automations_refuse_what_cannot_fire(client: Client, body: dict[str, Any], field: str) -> None:
    Directive.objects.upsert_from_yaml(SUMMARY)
    response = post(client, "/api/internal/automations", {"name": "a", "directive": "summary", **body})
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_knowledge_lists_searches_and_reads(client: Client) -> None:
    directive = Directive.objects.upsert_from_yaml(SUMMARY)
    KnowledgeEntry.objects.create(
        title="Slow git threads", content="git log is slow on big repos", source_directive=directive
    )
    KnowledgeEntry.objects.create(title="Retry flaky servers", category="best_practice", content="back off")
    found = client.get("/api/internal/knowledge", {"q": "git slow"}).json()["results"]
    assert [(e["slug"], e["source_directive"]) for e in found] == [("slow-git-threads", "summary")]
    practices = client.get("/api/internal/knowledge", {"category": "best_practice"}).json()["results"]
    assert [e["title"] for e in practices] == ["Retry flaky servers"]
    assert (
        client.get("/api/internal/knowledge/slow-git-threads").json()["content"]
        == "git log is slow on big repos"
    )
    assert client.get("/api/internal/knowledge/nope").status_code == 404
