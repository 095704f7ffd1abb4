"""Archived logs stay their team's: read from the archive (`/api/logs?archived=true`) and
restored to the database (`restore_logs`), a day of logs shows each user what the hot
table showed it.

Over `two_teams` (alpha's logs say "apple", beta's "banana", T-none's "nothing"),
archived a month later.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

from logs import archive
from logs.models import LogEntry
from tests.conftest import BASE_TIME, signed_in, team

pytestmark = pytest.mark.django_db

SPAN = {
    "archived": "true",
    "from": (BASE_TIME - timedelta(hours=1)).isoformat(),
    "to": (BASE_TIME + timedelta(hours=1)).isoformat(),
}


@pytest.fixture
def archived(two_teams: None, settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        },
    }
    report = archive.archive(now=BASE_TIME + timedelta(days=30))
    assert report.rows == 5 and not LogEntry.objects.exists()


def archived_ids(user: User, **params: str) -> set[str]:
    response = signed_in(user).get("/api/logs", {**SPAN, **params})
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_archived_logs_show_a_user_only_its_teams(archived: None, viewer: User, outsider: User) -> None:
    assert archived_ids(outsider) == {"log-T-b", "free-b"}
    assert archived_ids(viewer) == {"log-T-a", "free-a"}
    # Naming another team's thread or server narrows, never widens.
    assert archived_ids(outsider, threads="T-a,T-none") == set()
    assert archived_ids(outsider, mcps="srv-alpha", search="apple") == set()


def test_admins_read_every_teams_archived_logs(archived: None, admin: User) -> None:
    assert archived_ids(admin) == {"log-T-a", "free-a", "log-T-b", "free-b", "log-T-none"}


def test_archived_rows_carry_no_team_field(archived: None, outsider: User) -> None:
    rows = signed_in(outsider).get("/api/logs", SPAN).json()["results"]
    assert rows and all("team_id" not in row for row in rows)


def test_restored_logs_keep_their_team(archived: None, viewer: User, outsider: User) -> None:
    day = BASE_TIME.date()
    archive.restore(day, day)
    assert dict(LogEntry.objects.values_list("id", "team__slug")) == {
        "log-T-a": "alpha",
        "free-a": "alpha",
        "log-T-b": "beta",
        "free-b": "beta",
        "log-T-none": None,
    }
    assert set(LogEntry.objects.visible_to(outsider).values_list("id", flat=True)) == {"log-T-b", "free-b"}
    assert team("beta").pk in LogEntry.objects.values_list("team_id", flat=True)
