"""Archived logs stay their team's: read from the archive (`/api/logs?archived=true`) and
restored to the database (`restore_logs`), a day of logs shows each user what the hot
table showed it.

Over `two_teams` (alpha's logs say "apple", beta's "banana", T-none's "nothing"),
archived a month later.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from logs import archive
from logs.models import LogEntry
from tests.conftest import BASE_TIME, signed_in, team
from tests.processes import Server, clean_env, free_port, manage, post_events
from tests.test_isolation_mcp import SETUP

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


@pytest.mark.slow
def test_a_served_process_reads_each_team_its_own_archived_logs(tmp_path: Any) -> None:
    """Two teams push old logs to `manage.py serve`; `archive_logs` moves them to the archive;
    each team's token reads back its own."""

    env = clean_env(MC_DATA_DIR=str(tmp_path / "data"), MC_DEMO="0")
    manage(env, "migrate", "-v0", timeout=120)
    made = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    old = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=10)
    port = free_port()
    server = Server(
        [sys.executable, "manage.py", "serve", "--port", str(port)], port, env, tmp_path / "serve.log"
    )
    try:
        server.wait_healthy()
        for slug, word in (("alpha", "apple"), ("beta", "banana")):
            line = {
                "id": f"old-{slug}",
                "type": "log",
                "timestamp": old.isoformat(),
                "level": "INFO",
                "service": "agent",
                "mcp_id": "srv",
                "message": f"{word} from long ago",
            }
            assert post_events(server.url, made[f"key-{slug}"], [line])["accepted"] == 1
        manage(env, "archive_logs", timeout=120)
        span = {
            "archived": "true",
            "from": (old - timedelta(hours=1)).isoformat(),
            "to": (old + timedelta(hours=1)).isoformat(),
        }
        for slug, word in (("alpha", "apple"), ("beta", "banana")):
            answer = httpx.get(
                f"{server.url}/api/logs",
                params=span,
                headers={"Authorization": f"Bearer {made[f'token-{slug}']}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            assert [row["message"] for row in answer.json()["results"]] == [f"{word} from long ago"]
    finally:
        server.stop()
