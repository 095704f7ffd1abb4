"""Log retention tiers: hot -> warm -> cold -> gone; archives read back, restored, never duplicated."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from logs import archive
from logs.models import ArchiveDay, LogEntry
from tests.conftest import event, store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_archive(settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        },
    }


def days_ago(days: int, hour: int = 12) -> datetime:
    return datetime.combine(
        (timezone.now() - timedelta(days=days)).date(), datetime.min.time(), UTC
    ) + timedelta(hours=hour)


def log(when: datetime, **fields: Any) -> dict[str, Any]:
    return event("log", timestamp=when.isoformat(), **fields)


def rows(**filters: Any) -> list[dict[str, Any]]:
    return [r.as_event() for r in LogEntry.objects.filter(**filters).order_by("timestamp", "id")]


def test_archival_then_restore_round_trips_a_day_exactly() -> None:
    day = days_ago(10)
    store(
        log(
            day, id="a1", mcp_id="alpha", level="ERROR", context={"n": 1, "nested": ["x"]}, exception="Trace"
        ),
        log(day + timedelta(minutes=5), id="a2", mcp_id="alpha", thread_id="T-1", message="ünïcode ✓"),
        log(day + timedelta(hours=3), id="b1", mcp_id="beta"),
        log(days_ago(1), id="recent", mcp_id="alpha"),
    )
    before = rows(timestamp__lt=days_ago(5))
    report = archive.archive()
    assert (report.days, report.rows) == (2, 3)
    assert [r["id"] for r in rows()] == ["recent"]
    assert sorted(ArchiveDay.objects.values_list("mcp_id", "rows", "tier")) == [
        ("alpha", 2, "warm"),
        ("beta", 1, "warm"),
    ]

    call_command("restore_logs", "--from", day.date().isoformat(), "--to", day.date().isoformat())
    assert rows(timestamp__lt=days_ago(5)) == before


def test_a_rerun_archives_late_rows_without_duplicating_any() -> None:
    day = days_ago(9)
    store(log(day, id="first", mcp_id="alpha"))
    archive.archive()
    store(
        log(day + timedelta(hours=1), id="late", mcp_id="alpha"), log(day, id="first-again", mcp_id="alpha")
    )
    # A crash after writing but before deleting: the rows are still there on the next run.
    store(log(day, id="first", mcp_id="alpha"))
    assert archive.archive().days == 1
    assert archive.archive().days == 0
    (entry,) = ArchiveDay.objects.all()
    ids = [r["id"] for r in archive.decode_rows(archive._read(entry.name))]
    assert sorted(ids) == ["first", "first-again", "late"] and entry.rows == 3
    assert LogEntry.objects.count() == 0


def test_rows_stay_in_the_database_when_the_file_does_not_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    store(log(days_ago(8), id="kept", mcp_id="alpha"))
    monkeypatch.setattr(archive, "_read", lambda name: archive.encode_rows([]))  # a storage that loses writes
    with pytest.raises(archive.ArchiveError):
        archive.archive()
    assert [r["id"] for r in rows()] == ["kept"]
    assert not ArchiveDay.objects.exists()


def test_warm_days_move_to_cold_and_cold_days_expire(settings: Any) -> None:
    store(log(days_ago(10), id="aging", mcp_id="alpha"))
    archive.archive()
    entry = ArchiveDay.objects.get()
    warm_name = entry.name
    assert entry.tier == "warm" and archive.storage().exists(warm_name)

    settings.LOG_RETENTION = replace(settings.LOG_RETENTION, warm=9 * 86400)
    assert archive.archive().moved_cold == 1
    entry.refresh_from_db()
    assert entry.tier == "cold" and entry.name.startswith("cold/")
    assert archive.storage().exists(entry.name) and not archive.storage().exists(warm_name)
    assert [r["id"] for r in archive.decode_rows(archive._read(entry.name))] == ["aging"]

    settings.LOG_RETENTION = replace(settings.LOG_RETENTION, cold=9 * 86400)
    assert archive.archive().expired == 1
    assert not ArchiveDay.objects.exists() and not archive.storage().exists(entry.name)


def test_a_restored_day_stays_in_the_database_for_the_hot_period() -> None:
    day = days_ago(12)
    store(log(day, id="back", mcp_id="alpha"))
    archive.archive()
    archive.restore(day.date(), day.date())
    assert archive.archive().days == 0
    assert [r["id"] for r in rows()] == ["back"]
    ArchiveDay.objects.update(restored_until=timezone.now() - timedelta(seconds=1))
    assert archive.archive().days == 1
    assert ArchiveDay.objects.get().rows == 1 and not LogEntry.objects.exists()


def test_the_log_api_reads_archived_days_on_request(client: Any) -> None:
    day = days_ago(11)
    store(
        log(day, id="old-info", mcp_id="alpha", level="INFO", message="disk fine"),
        log(day + timedelta(hours=1), id="old-error", mcp_id="alpha", level="ERROR", message="disk FULL now"),
        log(day + timedelta(hours=2), id="old-beta", mcp_id="beta", level="ERROR", message="disk full"),
        log(days_ago(1), id="hot", mcp_id="alpha"),
    )
    archive.archive()
    span = {"from": (day - timedelta(hours=12)).isoformat(), "to": (day + timedelta(hours=12)).isoformat()}
    body = client.get("/api/logs", {"archived": "true", **span}).json()
    assert [r["id"] for r in body["results"]] == ["old-beta", "old-error", "old-info"]
    assert all(r["archived"] is True for r in body["results"])
    filtered = client.get(
        "/api/logs", {"archived": "true", "levels": "ERROR", "mcps": "alpha", "search": "full", **span}
    )
    assert [r["id"] for r in filtered.json()["results"]] == ["old-error"]
    assert [r["id"] for r in client.get("/api/logs").json()["results"]] == ["hot"]


def test_archived_reads_say_what_is_missing(client: Any) -> None:
    missing = client.get("/api/logs", {"archived": "true", "from": days_ago(3).isoformat()})
    assert missing.status_code == 400 and missing.json() == {"to": ["Required with archived=true."]}
    since = client.get("/api/logs", {"archived": "true", "since": "24h"})
    assert since.status_code == 400 and "since" in since.json()
    wide = client.get(
        "/api/logs", {"archived": "true", "from": days_ago(60).isoformat(), "to": days_ago(1).isoformat()}
    )
    assert wide.status_code == 400 and "to" in wide.json()
    assert client.get("/api/logs", {"archived": "maybe"}).json() == {"archived": ["Give true or false."]}


def test_the_command_archives_with_a_progress_bar(capsys: Any) -> None:
    store(log(days_ago(20), id="c1", mcp_id="alpha"), log(days_ago(19), id="c2", mcp_id="alpha"))
    call_command("archive_logs")
    out, err = capsys.readouterr()
    assert "archived 2 log(s) in 2 day file(s); 0 moved to cold; 0 expired" in out
    assert "archiving" in err and "2/2" in err


def test_the_beat_task_applies_retention(settings: Any) -> None:
    from logs.tasks import archive_logs

    store(log(days_ago(15), id="t1", mcp_id="alpha"))
    assert archive_logs.apply().get() == {"days": 1, "rows": 1, "moved_cold": 0, "expired": 0}
    assert settings.CELERY_BEAT_SCHEDULE["logs.archive"]["task"] == "logs.archive"


def test_archive_files_hold_no_log_text_in_clear_and_follow_key_rotation(settings: Any) -> None:
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    day = days_ago(10)
    store(log(day, id="s1", mcp_id="alpha", message="the customer's card is on file"))
    archive.archive()
    (entry,) = ArchiveDay.objects.all()
    raw = archive._read(entry.name)
    assert not raw.startswith(b"\x1f\x8b")  # not a gzip stream anyone could read
    assert b"customer" in gzip.decompress(Fernet(old).decrypt(raw))
    settings.FERNET_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.FERNET_KEYS = [new]
    settings.SECRET_KEY = "another-secret-key-" * 3  # the derived key is no help either
    assert [r["message"] for r in archive.decode_rows(archive._read(entry.name))] == [
        "the customer's card is on file"
    ]
    settings.FERNET_KEYS = [old]  # the old key alone no longer opens it
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        archive.decode_rows(archive._read(entry.name))


def test_archive_files_written_before_encryption_still_read_and_are_encrypted_on_rotation() -> None:
    day = days_ago(10)
    store(log(day, id="p1", mcp_id="alpha", message="an older plain file"))
    archive.archive()
    (entry,) = ArchiveDay.objects.all()
    # What an earlier version wrote: the gzip'd JSON Lines alone.
    archive._write(entry.name, archive.encryption.decrypt_bytes(archive._read(entry.name)))
    assert [r["id"] for r in archive.read(day - timedelta(hours=1), day + timedelta(hours=1))] == ["p1"]
    assert archive.reencrypt() == 1
    assert not archive._read(entry.name).startswith(b"\x1f\x8b")
