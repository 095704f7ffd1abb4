"""PostgreSQL: the log table is partitioned by day, partitions are made ahead, and a day's
partition is dropped only once that day is archived. SQLite keeps a plain table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from logs import archive, partitions
from logs.models import ArchiveDay, LogEntry
from logs.tasks import ensure_partitions
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from tests.conftest import event, store

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="declarative partitioning is PostgreSQL's; the embedded SQLite keeps a plain table",
    ),
]


@pytest.fixture(autouse=True)
def _own_archive(settings: Any, tmp_path: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        },
    }


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


def log(day: date, hour: int = 12, **fields: Any) -> dict[str, Any]:
    return event("log", timestamp=at(day, hour).isoformat(), **{"mcp_id": "alpha", **fields})


def test_the_log_table_is_partitioned_by_day_with_the_partition_key_in_its_primary_key() -> None:
    assert partitions.is_partitioned()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_partkeydef('logs_logentry'::regclass), pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = 'logs_logentry'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone() == ('RANGE ("timestamp")', 'PRIMARY KEY (id, "timestamp")')
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'logs_logentry'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {"log_time", "log_thread_time", "log_mcp_time", "log_level_time", "log_message_fts"} <= indexes
    # Django still knows `id` as the primary key.
    store(log(today(), id="one", message="disk full"))
    assert LogEntry.objects.get(pk="one").message == "disk full"
    assert list(LogEntry.objects.search("full").values_list("id", flat=True)) == ["one"]


def test_partitions_exist_ahead_and_the_beat_task_makes_missing_ones() -> None:
    wanted = {today() + timedelta(days=n) for n in range(-2, 8)}
    assert wanted <= set(partitions.attached())
    partitions.drop(partitions.name_of(today() + timedelta(days=8)))  # harmless when absent
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {partitions.name_of(today() + timedelta(days=7))}")
    assert today() + timedelta(days=7) not in partitions.attached()
    assert ensure_partitions() == [(today() + timedelta(days=7)).isoformat()]
    assert wanted <= set(partitions.attached())
    assert ensure_partitions() == []
    assert settings.CELERY_BEAT_SCHEDULE["logs.partitions"]["task"] == "logs.partitions"


def test_an_event_for_a_day_without_a_partition_is_stored_and_moves_when_its_day_gets_one() -> None:
    future, past = today() + timedelta(days=400), today() - timedelta(days=400)
    store(log(future, id="future"), log(past, id="past"), log(today(), id="now"))
    assert partitions.partition_of_row("future") == partitions.DEFAULT
    assert partitions.partition_of_row("past") == partitions.DEFAULT
    assert partitions.partition_of_row("now") == partitions.name_of(today())

    assert partitions.ensure(future, future) == [future]
    assert partitions.partition_of_row("future") == partitions.name_of(future)
    assert LogEntry.objects.get(id="future").timestamp == at(future)
    assert LogEntry.objects.count() == 3


def test_archiving_a_day_drops_its_partition_only_after_its_files_are_written() -> None:
    old, kept = today() - timedelta(days=10), today() - timedelta(days=9)
    partitions.ensure(old, kept)
    store(
        log(old, id="a1", mcp_id="alpha"),
        log(old, 13, id="a2", mcp_id="alpha"),
        log(old, 14, id="b1", mcp_id="beta"),
        log(kept, id="k1", mcp_id="alpha"),
        log(today(), id="hot", mcp_id="alpha"),
    )
    report = archive.archive(now=timezone.now() - timedelta(days=2))
    # hot = 7 days: `old` (10 days ago) is past it, `kept` (9 days ago) not, as of 2 days ago.
    assert (report.days, report.rows) == (2, 3)
    have = partitions.attached()
    assert old not in have and kept in have and today() in have
    assert old not in partitions.detached()
    for entry in ArchiveDay.objects.filter(day=old):
        assert archive.storage().exists(entry.name)
    assert sorted(LogEntry.objects.values_list("id", flat=True)) == ["hot", "k1"]


def test_a_partition_whose_file_does_not_read_back_stays_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    old = today() - timedelta(days=10)
    partitions.ensure(old, old)
    store(log(old, id="kept", mcp_id="alpha"))
    monkeypatch.setattr(archive, "_read", lambda name: archive.encode_rows([]))  # a storage that loses writes
    with pytest.raises(archive.ArchiveError):
        archive.archive()
    assert old in partitions.attached() and not partitions.detached()
    assert partitions.partition_of_row("kept") == partitions.name_of(old)
    assert not ArchiveDay.objects.exists()


def test_a_partition_left_detached_by_an_interrupted_run_is_archived_by_the_next() -> None:
    recent = today() - timedelta(days=1)
    store(log(recent, id="r1", mcp_id="alpha"))
    assert partitions.detach(recent) == partitions.name_of(recent)
    # Meanwhile a late row of that day arrives: the default partition takes it.
    store(log(recent, 13, id="r2", mcp_id="alpha"))
    assert partitions.partition_of_row("r2") == partitions.DEFAULT
    report = archive.archive()
    assert (report.days, report.rows) == (1, 1)
    assert not partitions.detached()
    (entry,) = ArchiveDay.objects.all()
    assert [r["id"] for r in archive.decode_rows(archive._read(entry.name))] == ["r1"]
    assert list(LogEntry.objects.values_list("id", flat=True)) == ["r2"]


def test_restore_brings_a_dropped_day_back_into_its_own_partition_queryable() -> None:
    old = today() - timedelta(days=12)
    partitions.ensure(old, old)
    store(log(old, id="x1", mcp_id="alpha", message="disk full"), log(old, 15, id="x2", mcp_id="beta"))
    before = [r.as_event() for r in LogEntry.objects.order_by("timestamp")]
    archive.archive()
    assert old not in partitions.attached() and not LogEntry.objects.exists()

    assert archive.restore(old, old) == (2, 2)
    assert partitions.partition_of_row("x1") == partitions.name_of(old)
    assert [r.as_event() for r in LogEntry.objects.order_by("timestamp")] == before
    assert list(LogEntry.objects.search("full").values_list("id", flat=True)) == ["x1"]
    # Held while restored; archived (and its partition dropped) again once that is over.
    assert archive.archive().days == 0 and old in partitions.attached()
    ArchiveDay.objects.update(restored_until=timezone.now() - timedelta(seconds=1))
    assert archive.archive().rows == 2
    assert old not in partitions.attached() and not LogEntry.objects.exists()


def test_a_repeated_event_id_is_stored_once_whatever_its_timestamp() -> None:
    first = ingest([log(today(), id="same", message="first")], Source(mcp_id="alpha"))
    again = ingest([log(today(), id="same", message="first")], Source(mcp_id="alpha"))
    moved = ingest([log(today() - timedelta(days=1), id="same", message="other day")], Source(mcp_id="alpha"))
    far = ingest([log(today() + timedelta(days=500), id="same")], Source(mcp_id="alpha"))
    assert [r.verdicts[0].status for r in (first, again, moved, far)] == [
        "accepted",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert list(LogEntry.objects.values_list("id", "message")) == [("same", "first")]


def test_an_archived_id_may_be_stored_again_as_before_partitioning() -> None:
    old = today() - timedelta(days=10)
    partitions.ensure(old, old)
    store(log(old, id="again", mcp_id="alpha"))
    archive.archive()
    store(log(old, id="again", mcp_id="alpha"))
    assert LogEntry.objects.filter(id="again").count() == 1
    archive.archive()
    (entry,) = ArchiveDay.objects.all()
    assert entry.rows == 1
