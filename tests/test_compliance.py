"""The compliance report of a period, its JSON/CSV export, command and page, on crafted data."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.compliance import compliance_report
from tests.conftest import event, store

DAY = 86400  # conftest's event() times count from 2026-11-21 10:00 UTC
PERIOD = {"from": "2026-11-21", "to": "2026-11-23"}
pytestmark = pytest.mark.django_db


def check(seconds: float, user: str, resource: str, granted: bool, **fields: Any) -> dict[str, Any]:
    return event("permission.check", seconds, user_id=user, resource=resource, granted=granted, **fields)


@pytest.fixture
def checks() -> None:
    store(
        # 2026-11-21: alice reads git twice, is denied push three times; bob: time ok, git push denied
        check(0, "alice", "git/log", True),
        check(10, "alice", "git/log", True),
        check(3000, "alice", "git/push", False),
        check(3010, "alice", "git/push", False),
        check(3020, "alice", "git/push", False),
        check(20, "bob", "time/now", True),
        check(30, "bob", "git/push", False),
        # 2026-11-22: bob is granted push, reported as an escalation by his agent
        check(DAY, "bob", "git/push", True, escalation_detected=True, id="bob-esc"),
        # outside the period
        check(4 * DAY, "alice", "git/push", False),
        check(-DAY, "alice", "git/push", False),
    )


def test_the_report_counts_checks_grants_and_denials_by_subject_and_resource(checks: None) -> None:
    report = compliance_report(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
    assert report.totals == {"checks": 8, "grants": 4, "denials": 4, "escalations": 1}
    assert report.by_subject == [
        {"subject": "alice", "checks": 5, "grants": 2, "denials": 3, "escalations": 0},
        {"subject": "bob", "checks": 3, "grants": 2, "denials": 1, "escalations": 1},
    ]
    assert report.by_resource == [
        {"resource": "git/push", "checks": 5, "grants": 1, "denials": 4, "escalations": 1},
        {"resource": "git/log", "checks": 2, "grants": 2, "denials": 0, "escalations": 0},
        {"resource": "time/now", "checks": 1, "grants": 1, "denials": 0, "escalations": 0},
    ]
    assert [(d["subject"], d["resource"], d["denials"]) for d in report.top_denials] == [
        ("alice", "git/push", 3),
        ("bob", "git/push", 1),
    ]
    assert [(e["id"], e["subject"], e["resource"]) for e in report.escalations] == [
        ("bob-esc", "bob", "git/push")
    ]
    assert [(str(d["day"]), d["checks"], d["grants"], d["denials"]) for d in report.per_day] == [
        ("2026-11-21", 7, 3, 4),
        ("2026-11-22", 1, 1, 0),
    ]


def test_the_api_answers_json_and_csv_with_the_same_numbers(client: Any, checks: None) -> None:
    answer = client.get("/api/permissions/compliance", PERIOD)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["totals"] == {"checks": 8, "grants": 4, "denials": 4, "escalations": 1}
    assert body["from"] == "2026-11-21T00:00:00+00:00" and body["per_day"][0]["day"] == "2026-11-21"

    exported = client.get("/api/permissions/compliance", {**PERIOD, "format": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert 'filename="compliance-2026-11-21-2026-11-23.csv"' in exported["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    totals = next(r for r in rows if r["section"] == "totals")
    assert (totals["checks"], totals["grants"], totals["denials"], totals["escalations"]) == (
        "8",
        "4",
        "4",
        "1",
    )
    subjects = {r["subject"]: r["denials"] for r in rows if r["section"] == "subject"}
    assert subjects == {"alice": "3", "bob": "1"}
    assert [r["day"] for r in rows if r["section"] == "day"] == ["2026-11-21", "2026-11-22"]
    (escalation,) = [r for r in rows if r["section"] == "escalation"]
    assert escalation["subject"] == "bob" and escalation["resource"] == "git/push"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-40"}, "to"),
        ({"from": "2026-11-23", "to": "2026-11-21"}, "from"),
        ({"format": "xml"}, "format"),
        ({"since": "24h"}, "since"),
    ],
)
def test_a_bad_query_is_a_400_naming_it(client: Any, query: dict[str, str], field: str) -> None:
    answer = client.get("/api/permissions/compliance", query)
    assert answer.status_code == 400 and field in answer.json(), answer.content


def test_the_command_writes_json_csv_or_text(checks: None, tmp_path: Path, capsys: Any) -> None:
    call_command("compliance_report", "--from", "2026-11-21", "--to", "2026-11-23", "--format", "json")
    assert json.loads(capsys.readouterr().out)["totals"]["denials"] == 4
    call_command("compliance_report", "--from", "2026-11-21", "--to", "2026-11-23", "--format", "text")
    text = capsys.readouterr().out
    assert "checks 8, grants 4, denials 4, escalations 1" in text and "alice -> git/push" in text
    out = tmp_path / "report.csv"
    call_command(
        "compliance_report",
        "--from",
        "2026-11-21",
        "--to",
        "2026-11-23",
        "--format",
        "csv",
        "--output",
        str(out),
    )
    assert out.read_text().startswith("section,subject,resource,day,checks")
    with pytest.raises(CommandError, match="--from"):
        call_command("compliance_report", "--from", "soon")


def test_the_page_shows_the_tables_the_chart_and_the_export_links(client: Any, checks: None) -> None:
    page = client.get("/permissions/compliance", PERIOD)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<span id="total-checks">8</span>' in html and '<span id="total-denials">4</span>' in html
    assert '<svg id="checks-per-day"' in html and html.count("<rect") == 4  # two days, two bars each
    assert "2026-11-21: 7 checks, 3 grants, 4 denials" in html
    assert "format=csv" in html and "format=json" in html
    assert "<code>alice</code>" in html and "<code>git/push</code>" in html
    assert "http://" not in html.replace("http://testserver", "")  # nothing from a CDN
    assert client.get("/permissions/compliance", {"from": "nope"}).status_code == 400
