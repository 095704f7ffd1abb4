"""Directives parsed from YAML, knowledge entries and their links, and the built-in scripts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone

from audit.models import PermissionEvent
from automations import scripts
from automations.definition import ToolRef
from automations.models import Directive, KnowledgeEntry
from logs.models import LogEntry
from threads.models import Thread

pytestmark = pytest.mark.django_db

# The seed's monitor_thread_health, with a tool step in each spelling added.
MONITOR = """
name: monitor_thread_health
version: 1.0.0
description: Monitor active threads and detect stalled/crashed ones
permissions: [read:threads, write:logs]
steps:
  - name: fetch_active_threads
    script: query_active_threads.py
  - name: check_each_thread
    foreach: active_threads
    steps:
      - script: check_thread_health.py
        inputs: {thread_id: "{{ item.id }}", timeout_seconds: 300}
      - conditional:
          if: "{{ result.status == 'stalled' }}"
          then:
            script: alert_stalled_thread.py
          else:
            - tool: git__git_log
            - server: time
              tool: get_current_time
  - name: log_summary
    script: log_health_check.py
  - script: query_active_threads
"""


def test_it_parses_a_directive_and_finds_scripts_and_tools_in_nested_steps() -> None:
    directive = Directive.objects.upsert_from_yaml(MONITOR)
    assert (directive.name, directive.version, directive.system, directive.enabled) == (
        "monitor_thread_health",
        "1.0.0",
        False,
        True,
    )
    assert directive.description == "Monitor active threads and detect stalled/crashed ones"
    assert directive.source == MONITOR
    assert directive.definition["permissions"] == ["read:threads", "write:logs"]
    assert directive.script_names() == [
        "query_active_threads",
        "check_thread_health",
        "alert_stalled_thread",
        "log_health_check",
    ]
    assert directive.tool_refs() == [ToolRef("git", "git_log"), ToolRef("time", "get_current_time")]
    assert len(list(directive.steps())) == 9


def test_it_replaces_a_directive_of_the_same_name() -> None:
    first = Directive.objects.upsert_from_yaml("name: tidy\nversion: 1\nsteps: [{script: cleanup_old_logs}]")
    second = Directive.objects.upsert_from_yaml(
        "name: tidy\nversion: 2\nsteps: [{script: generate_summary}]", system=True
    )
    assert second.pk == first.pk and Directive.objects.count() == 1
    second.refresh_from_db()
    assert (second.version, second.system, second.script_names()) == ("2", True, ["generate_summary"])


def test_it_keeps_a_users_directive_from_replacing_a_system_one() -> None:
    Directive.objects.upsert_from_yaml("name: tidy\nsteps: [{script: cleanup_old_logs}]", system=True)
    with pytest.raises(ValueError, match="'tidy' is a system directive"):
        Directive.objects.upsert_from_yaml("name: tidy\nsteps: [{script: generate_summary}]")
    assert Directive.objects.get().script_names() == ["cleanup_old_logs"]


def test_it_stores_yaml_dates_as_strings() -> None:
    directive = Directive.objects.upsert_from_yaml("name: d\nversion: 2026-01-22\nsteps: [{script: s}]")
    directive.refresh_from_db()
    assert directive.definition["version"] == directive.version == "2026-01-22"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: [unclosed\nsteps: []",
            re.escape("invalid YAML: expected ',' or ']', but got ':' (line 2, column 6)"),
        ),
        ("- name: x\n- steps: []", "a directive must be a YAML mapping, not a list"),
        ("", "a directive must be a YAML mapping, not nothing"),
        ("steps: [{script: s}]", "line 1, column 1: 'name' is a required property"),
        ("name: two words\nsteps: [{script: s}]", "line 1, column 7: name: 'two words' does not match"),
        ("name: x", "line 1, column 1: 'steps' is a required property"),
        ("name: x\nsteps: {script: s}", "line 2, column 8: steps: {'script': 's'} is not of type 'array'"),
        ("name: x\nsteps: [run it]", r"line 2, column 9: steps\[0\]: 'run it' is not of type 'object'"),
        (
            "name: x\nsteps:\n  - tool: git_log",
            r"line 3, column 11: steps\[0\]\.tool: 'git_log' does not say its server",
        ),
        (
            "name: x\nsteps: [{server: a/b, tool: t}]",
            r"line 2, column 18: steps\[0\]\.server: 'a/b' does not",
        ),
        ("name: x\nsteps: [{script: 3}]", r"steps\[0\]\.script: 3 is not of type 'string'"),
        ("name: x\nsteps: [{foreach: items}]", r"steps\[0\]: 'steps' is a dependency of 'foreach'"),
        (
            "name: x\nsteps:\n  - foreach: items\n    steps:\n      - script: a\n      - 7\n",
            r"line 6, column 9: steps\[0\]\.steps\[1\]: 7 is not of type 'object'",
        ),
        (
            "name: x\nsteps: [{conditional: {if: yes}}]",
            r"steps\[0\]\.conditional: 'then' is a required property",
        ),
        (
            "name: x\nsteps:\n  - script: a\n    timeout_seconds: 0\n",
            r"line 4, column 22: steps\[0\]\.timeout_seconds: 0 is less than or equal to the minimum of 0",
        ),
        (
            "name: x\npermisions: []\nsteps: [{script: a}]",
            "line 2, column 1: permisions: unknown key 'permisions'",
        ),
        (
            "name: x\nsteps:\n  - {script: a, tool: b__c}",
            r"line 3, column 5: steps\[0\]: a step does one thing",
        ),
        ("name: x\nsteps:\n  - {name: a}", r"line 3, column 5: steps\[0\]: a step needs one of script, tool"),
        ("name: x\ninputs:\n  n: {type: int}\nsteps: [{script: a}]", r"line 3, column 13: inputs\.n\.type"),
        ("name: x\npermissions: [threads]\nsteps: [{script: a}]", r"line 2, column 15: permissions\[0\]"),
        (
            "name: x\nsteps: [{conditional: {if: a, then: [{script: a}], else: [oops]}}]",
            r"steps\[0\]\.conditional\.else",
        ),
    ],
)
def test_it_rejects_a_bad_directive_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Directive.objects.upsert_from_yaml(text)
    assert not Directive.objects.exists()


@pytest.fixture
def alice(client: Client) -> Client:
    User.objects.create_superuser("alice", "alice@example.com", "pw-alice-123")
    client.login(username="alice", password="pw-alice-123")
    return client


SUMMARY = "name: summary\nversion: 1.0.0\npermissions: ['read:*']\nsteps:\n  - script: generate_summary\n"


def test_it_adds_a_directive_from_its_yaml_in_the_admin(alice: Client) -> None:
    response = alice.post(
        "/admin/automations/directive/add/",
        {"source": SUMMARY, "enabled": "on", "knowledge-TOTAL_FORMS": 0, "knowledge-INITIAL_FORMS": 0},
    )
    assert response.status_code == 302, response.content.decode()
    directive = Directive.objects.get()
    assert directive.name == "summary" and directive.version == "1.0.0"
    assert alice.get("/admin/automations/directive/", {"q": "summary"}).status_code == 200
    assert alice.get(f"/admin/automations/directive/{directive.pk}/change/").status_code == 200


def test_it_shows_the_yaml_error_in_the_admin(alice: Client) -> None:
    Directive.objects.upsert_from_yaml(MONITOR)
    for source, error in [
        ("name: x\nsteps: [run it]", "steps[0]: &#x27;run it&#x27; is not of type"),
        (MONITOR, "a directive named &#x27;monitor_thread_health&#x27; already exists"),
        (
            SUMMARY.replace("summary\n", "other\n", 1).replace("read:*", "read:threads"),
            "steps[0]: script &#x27;generate_summary&#x27; needs &#x27;read:logs&#x27;",
        ),
    ]:
        response = alice.post(
            "/admin/automations/directive/add/",
            {"source": source, "knowledge-TOTAL_FORMS": 0, "knowledge-INITIAL_FORMS": 0},
        )
        assert response.status_code == 200
        assert error in response.content.decode()
    assert Directive.objects.count() == 1


def test_it_lists_and_searches_knowledge_in_the_admin(alice: Client) -> None:
    KnowledgeEntry.objects.create(title="Slow git threads", content="git log is slow on big repos")
    assert (
        "Slow git threads" in alice.get("/admin/automations/knowledgeentry/", {"q": "git"}).content.decode()
    )


def test_it_slugs_a_knowledge_entry_from_its_title() -> None:
    entry = KnowledgeEntry.objects.create(title="Retry flaky MCP servers", category="best_practice")
    assert entry.slug == "retry-flaky-mcp-servers"


def test_it_keeps_confidence_between_zero_and_one() -> None:
    with pytest.raises(IntegrityError):
        KnowledgeEntry.objects.create(title="Too sure", confidence=1.5)


def test_it_links_entries_mentioned_by_slug_or_exact_title() -> None:
    entries = [
        KnowledgeEntry(
            slug="slow-git", title="Slow git threads", content="See [[timeouts]] and [[nowhere]]."
        ),
        KnowledgeEntry(slug="timeouts", title="Timeouts", content="Often Slow git threads; Timeouts again."),
        KnowledgeEntry(
            slug="retries", title="Retries", content="slow git threads, Timeoutsish, [[ retries ]]"
        ),
    ]
    assert KnowledgeEntry.links(entries) == [("slow-git", "timeouts"), ("timeouts", "slow-git")]


def test_it_registers_the_four_built_in_scripts() -> None:
    registered = scripts.registry()
    assert list(registered) == sorted(registered)
    assert {
        "cleanup_old_logs",
        "detect_slow_threads",
        "find_permission_escalations",
        "generate_summary",
    } <= set(registered)
    cleanup = scripts.get("cleanup_old_logs")
    assert cleanup is not None and cleanup.permissions == ("write:logs",)
    assert cleanup.parameters() == {"max_age_days": 30}
    assert scripts.get("nope") is None


def test_it_rejects_parameters_a_script_does_not_take() -> None:
    script = scripts.get("generate_summary")
    assert script is not None
    with pytest.raises(
        ValueError, match="script 'generate_summary': got an unexpected keyword argument 'days'"
    ):
        script.run({"days": 3})
    with pytest.raises(ValueError, match="window_hours must be a number > 0, not -1"):
        script.run({"window_hours": -1})


def test_it_refuses_two_scripts_with_one_name() -> None:
    with pytest.raises(ValueError, match="'generate_summary' is already registered"):

        @scripts.script("generate_summary", "another")
        def impostor() -> dict[str, object]:
            return {}


def _finished(tid: str, seconds: float, ended_ago: timedelta, status: str = "complete") -> Thread:
    ended = timezone.now() - ended_ago
    return Thread.objects.create(
        id=tid, status=status, started_at=ended - timedelta(seconds=seconds), ended_at=ended
    )


def test_it_detects_threads_slower_than_one_and_a_half_times_the_p95() -> None:
    for i in range(1, 20):  # 1 s .. 19 s
        _finished(f"T-{i:02}", i, timedelta(hours=1))
    _finished("T-slow", 100, timedelta(hours=2), status="error")
    _finished("T-old", 1000, timedelta(days=3))  # outside the window
    Thread.objects.create(id="T-running", started_at=timezone.now() - timedelta(hours=5))

    result = scripts.get("detect_slow_threads").run({"window_hours": 24})  # type: ignore[union-attr]

    # 20 durations: the nearest-rank P95 is the 19th, 19 s; the threshold 28.5 s.
    assert result["sample_size"] == 20
    assert result["p95_ms"] == pytest.approx(19_000)
    assert result["threshold_ms"] == pytest.approx(28_500)
    assert result["count"] == 1
    [slow] = result["slow_threads"]
    assert slow["id"] == "T-slow" and slow["status"] == "error" and slow["mcp_id"] is None
    assert slow["duration_ms"] == pytest.approx(100_000)


def test_it_finds_no_slow_threads_without_finished_ones() -> None:
    Thread.objects.create(id="T-running")
    assert scripts.detect_slow_threads() == {
        "sample_size": 0,
        "p95_ms": None,
        "threshold_ms": None,
        "count": 0,
        "slow_threads": [],
    }


def _permission(
    pid: str, ago: timedelta, *, user: str = "alice", granted: bool = True, escalation: bool = False
):
    thread, _ = Thread.objects.get_or_create(id="T-perm")
    return PermissionEvent.objects.create(
        id=pid,
        timestamp=timezone.now() - ago,
        thread=thread,
        user_id=user,
        resource="git/commit",
        action="execute",
        granted=granted,
        escalation_detected=escalation,
    )


def test_it_finds_permission_escalations_in_the_window_newest_first() -> None:
    _permission("p-1", timedelta(hours=3), user="bob", escalation=True)
    _permission("p-2", timedelta(hours=1), user="bob", escalation=True, granted=False)
    _permission("p-3", timedelta(hours=2), user="charlie", escalation=True)
    _permission("p-4", timedelta(minutes=5))  # no escalation
    _permission("p-5", timedelta(hours=30), user="alice", escalation=True)  # too old

    result = scripts.find_permission_escalations(window_hours=24, limit=2)

    assert result["count"] == 3
    assert result["by_user"] == {"bob": 2, "charlie": 1}
    assert [e["id"] for e in result["escalations"]] == ["p-2", "p-3"]
    assert result["escalations"][0]["granted"] is False


def _log(lid: str, ago: timedelta, level: str = "INFO") -> LogEntry:
    return LogEntry.objects.create(
        id=lid, timestamp=timezone.now() - ago, level=level, service="executor", mcp_id="git", message=lid
    )


def test_it_deletes_logs_older_than_the_given_age() -> None:
    for lid, days in [("l-40", 40), ("l-31", 31), ("l-29", 29), ("l-1", 1)]:
        _log(lid, timedelta(days=days))

    result = scripts.cleanup_old_logs(max_age_days=30)

    assert result["deleted"] == 2
    assert sorted(LogEntry.objects.values_list("id", flat=True)) == ["l-1", "l-29"]
    assert scripts.cleanup_old_logs(max_age_days=30)["deleted"] == 0


def test_it_summarises_threads_logs_and_denials_over_the_window() -> None:
    now = timezone.now()
    Thread.objects.create(id="T-a", started_at=now - timedelta(hours=1))
    Thread.objects.create(id="T-b", started_at=now - timedelta(hours=2), status="complete")
    Thread.objects.create(id="T-c", started_at=now - timedelta(hours=3), status="complete")
    Thread.objects.create(id="T-d", started_at=now - timedelta(hours=4), status="error")
    Thread.objects.create(id="T-old", started_at=now - timedelta(days=2), status="error")
    for lid, level in [("l-1", "INFO"), ("l-2", "INFO"), ("l-3", "ERROR"), ("l-4", "WARN")]:
        _log(lid, timedelta(hours=1), level)
    _log("l-old", timedelta(days=2), "ERROR")
    _permission("p-1", timedelta(hours=1), granted=False)
    _permission("p-2", timedelta(hours=1), granted=False, escalation=True)
    _permission("p-3", timedelta(hours=1))
    _permission("p-old", timedelta(days=2), granted=False)

    result = scripts.generate_summary(window_hours=24)

    assert result["threads"] == {
        "total": 5,  # T-perm, made for the permission checks, started now
        "by_status": {"running": 2, "paused": 0, "complete": 2, "error": 1, "cancelled": 0},
    }
    assert result["logs"] == {"total": 4, "by_level": {"DEBUG": 0, "INFO": 2, "WARN": 1, "ERROR": 1}}
    assert result["permissions"] == {"checks": 3, "denials": 2, "escalations": 1}
