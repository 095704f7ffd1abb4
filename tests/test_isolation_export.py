"""Exports hold only the exporting user's rows: logs (CSV, JSON Lines), the compliance
report (JSON, CSV), and the admin's export of selected logs.

Over `two_teams` (alpha's rows say "apple", beta's "banana", T-none's "nothing"); a
filter naming another team's thread narrows, it never widens.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from logs.models import LogEntry
from tests.conftest import BASE_TIME, api_token, signed_in
from tests.mcp_servers import api
from tests.teams import content

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_the_log_export_holds_only_the_teams_logs(two_teams_committed: None, fmt: str) -> None:
    token = await sync_to_async(lambda: api_token(User.objects.get(username="victor")))()
    response = await api("GET", f"/api/logs/export?format={fmt}", token=token)
    assert response.status_code == 200
    if fmt == "csv":
        exported = {row[0] for row in list(csv.reader(io.StringIO(response.text)))[1:]}
    else:
        exported = {json.loads(line)["id"] for line in response.text.splitlines() if line}
    assert exported == {"log-T-a", "free-a"}
    asked_for_theirs = await api("GET", f"/api/logs/export?format={fmt}&threads=T-b,T-none", token=token)
    assert "banana" not in asked_for_theirs.text and "nothing" not in asked_for_theirs.text


def test_the_compliance_report_counts_only_the_checks_a_user_may_see(
    two_teams: None, viewer: User, admin: User, time_machine: Any
) -> None:
    # The report's default period is the seven days up to now: a day after the checks.
    time_machine.move_to(BASE_TIME + timedelta(days=1))
    mine = signed_in(viewer).get("/api/permissions/compliance").json()
    assert mine["totals"]["checks"] == 1
    assert [row["resource"] for row in mine["by_resource"]] == ["apple/x"]
    csv_rows = signed_in(viewer).get("/api/permissions/compliance?format=csv").content.decode()
    assert "apple/x" in csv_rows and "banana/x" not in csv_rows and "nothing/x" not in csv_rows
    page = signed_in(viewer).get("/permissions/compliance").content.decode()
    assert "apple/x" in page and "banana/x" not in page
    everything = signed_in(admin).get("/api/permissions/compliance").json()
    assert everything["totals"]["checks"] == 3
    assert {row["resource"] for row in everything["by_resource"]} == {"apple/x", "banana/x", "nothing/x"}


def test_the_admins_export_of_selected_logs_holds_only_what_the_user_may_see(
    two_teams: None, outsider: User
) -> None:
    outsider.is_staff = True  # a staff member who is no admin: the admin shows it its team's
    outsider.save()
    every_id = list(LogEntry.objects.values_list("id", flat=True))
    response = signed_in(outsider).post(
        "/admin/logs/logentry/", {"action": "export_jsonl", "_selected_action": every_id}
    )
    assert response.status_code == 200, response.content[:300]
    lines = content(response).decode().splitlines()
    assert {json.loads(line)["id"] for line in lines} == {"log-T-b", "free-b"}
