"""Retention per server: a server's own hot, warm and cold ages over the config's `log_retention`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from logs import archive, partitions
from logs.models import ArchiveDay, LogEntry
from mcps.models import MCPServer
from mcps.registration import sync_config_servers
from missioncontrol.config import ConfigError, parse_config
from tests.conftest import event, store

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="day partitions are PostgreSQL's",
)


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


def log(day: date, mcp_id: str, id: str, hour: int = 12) -> dict[str, Any]:
    when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)
    return event("log", timestamp=when.isoformat(), id=id, mcp_id=mcp_id)


def server(mcp_id: str, **retention: Any) -> MCPServer:
    return MCPServer.objects.update_or_create(
        id=mcp_id, defaults={"name": mcp_id, "log_retention": retention or None}
    )[0]


def in_db() -> list[str]:
    return sorted(LogEntry.objects.values_list("id", flat=True))


def archived() -> list[tuple[str, str]]:
    return sorted((str(d), m) for d, m in ArchiveDay.objects.values_list("day", "mcp_id"))


def test_a_server_with_a_shorter_hot_is_archived_while_the_others_rows_of_that_day_stay() -> None:
    day = today() - timedelta(days=3)
    partitions.ensure(day, day)
    server("chatty", hot="2 days")
    server("quiet")  # the config's 7 days
    store(log(day, "chatty", "c1"), log(day, "chatty", "c2", 13), log(day, "quiet", "q1"))
    report = archive.archive()
    assert (report.days, report.rows) == (1, 2)
    assert in_db() == ["q1"]
    assert archived() == [(str(day), "chatty")]
    (entry,) = ArchiveDay.objects.all()
    assert [r["id"] for r in archive.decode_rows(archive._read(entry.name))] == ["c1", "c2"]
    if partitions.enabled():  # the day is still hot for `quiet`: its partition stays
        assert day in partitions.attached() and not partitions.detached()
    assert archive.archive().days == 0


def test_a_server_with_a_longer_hot_keeps_its_rows_past_the_configs_hot() -> None:
    day = today() - timedelta(days=10)
    partitions.ensure(day, day)
    server("keeper", hot="30 days")
    store(log(day, "keeper", "k1"), log(day, "other", "o1"))  # `other` has no row: the config's ages
    report = archive.archive()
    assert (report.days, report.rows) == (1, 1)
    assert in_db() == ["k1"] and archived() == [(str(day), "other")]
    if partitions.enabled():
        assert day in partitions.attached()
    # Three weeks later the day is past keeper's hot too.
    report = archive.archive(now=timezone.now() + timedelta(days=21))
    assert (report.days, report.rows) == (1, 1)
    assert in_db() == [] and archived() == [(str(day), "keeper"), (str(day), "other")]


@postgres_only
def test_a_day_partition_is_dropped_only_once_no_server_keeps_it_hot() -> None:
    day = today() - timedelta(days=10)
    partitions.ensure(day, day)
    server("keeper", hot="12 days")
    store(log(day, "keeper", "k1"), log(day, "other", "o1"), log(day, "other", "o2", 14))
    archive.archive()
    assert day in partitions.attached() and partitions.partition_of_row("k1") == partitions.name_of(day)
    assert in_db() == ["k1"]

    report = archive.archive(now=timezone.now() + timedelta(days=3))
    assert (report.days, report.rows) == (1, 1)
    assert day not in partitions.attached() and not partitions.detached()
    assert in_db() == [] and archived() == [(str(day), "keeper"), (str(day), "other")]


@postgres_only
def test_a_day_past_every_servers_hot_is_dropped_whole() -> None:
    day = today() - timedelta(days=5)
    partitions.ensure(day, day)
    server("a", hot="2 days")
    server("b", hot="4 days")
    store(log(day, "a", "a1"), log(day, "b", "b1"))
    report = archive.archive()
    assert (report.days, report.rows) == (2, 2)
    assert day not in partitions.attached() and in_db() == []


def test_warm_to_cold_and_expiry_go_by_each_servers_ages() -> None:
    day = today() - timedelta(days=40)
    server("brief", warm="20 days", cold="35 days")
    server("long", warm="60 days")
    store(log(day, "brief", "b1"), log(day, "long", "l1"), log(day, "plain", "p1"))
    report = archive.archive()
    # brief: past its cold (35 days) as soon as it is archived; plain: cold (config's warm 30 days).
    assert (report.rows, report.moved_cold, report.expired) == (3, 0, 1)
    tiers = dict(ArchiveDay.objects.values_list("mcp_id", "tier"))
    assert tiers == {"long": "warm", "plain": "cold"}

    report = archive.archive(now=timezone.now() + timedelta(days=25))  # long: 65 days, past its warm
    assert (report.moved_cold, report.expired) == (1, 0)
    assert dict(ArchiveDay.objects.values_list("mcp_id", "tier")) == {"long": "cold", "plain": "cold"}

    report = archive.archive(now=timezone.now() + timedelta(days=330))  # 370 days: the config's cold
    assert report.expired == 2 and not ArchiveDay.objects.exists()


def test_a_warm_day_moves_to_cold_once_its_server_is_given_a_shorter_warm() -> None:
    day = today() - timedelta(days=12)
    store(log(day, "alpha", "a1"))
    archive.archive()
    assert ArchiveDay.objects.get().tier == "warm"
    server("alpha", warm="10 days")
    assert archive.archive().moved_cold == 1
    entry = ArchiveDay.objects.get()
    assert entry.tier == "cold" and archive.storage().exists(entry.name)


def test_a_restored_day_stays_for_its_servers_hot() -> None:
    day = today() - timedelta(days=40)
    server("keeper", hot="20 days")
    store(log(day, "keeper", "k1"))
    archive.archive()
    archive.restore(day, day)
    until = ArchiveDay.objects.get().restored_until
    assert until is not None and timedelta(days=19) < until - timezone.now() <= timedelta(days=20)


def test_archive_reads_every_servers_ages_in_the_same_few_queries() -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            archive.archive()
        return len(captured)

    day = today() - timedelta(days=1)
    server("s0", hot="2 days", warm="9 days")
    store(log(day, "s0", "r0"))
    one = queries()
    for n in range(1, 8):
        server(f"s{n}", hot=f"{n + 1} days", cold="400 days")
        store(log(day, f"s{n}", f"r{n}"))
    assert queries() == one <= 10
    assert len(in_db()) == 8


def test_rest_registration_sets_and_validates_log_retention(client: Any) -> None:
    entry = {"id": "timed", "command": "uvx", "log_retention": {"hot": "3 days", "cold": "90d"}}
    response = client.post("/api/mcps", entry, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["log_retention"] == {"hot": "3 days", "cold": "90d"}
    assert MCPServer.objects.log_retentions(settings.LOG_RETENTION)["timed"].hot == 3 * 86400

    bad = client.post(
        "/api/mcps", {**entry, "log_retention": {"hot": "soon"}}, content_type="application/json"
    )
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["field"] == "log_retention" and error["reason"].startswith("hot: expected a duration")
    unknown = client.post(
        "/api/mcps", {**entry, "log_retention": {"lukewarm": "1d"}}, content_type="application/json"
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["reason"].startswith("lukewarm: unknown key")
    assert MCPServer.objects.get(id="timed").log_retention == {"hot": "3 days", "cold": "90d"}


def test_the_config_names_a_bad_server_retention_and_syncs_a_good_one() -> None:
    with pytest.raises(ConfigError, match=r"^mcps\.servers\.git\.log_retention\.warm: expected a duration"):
        parse_config({"mcps": {"servers": {"git": {"command": "x", "log_retention": {"warm": "a month"}}}}})
    with pytest.raises(ConfigError, match=r"^mcps\.servers\.git\.log_retention: expected a mapping"):
        parse_config({"mcps": {"servers": {"git": {"command": "x", "log_retention": "7 days"}}}})

    config = parse_config({"mcps": {"servers": {"git": {"command": "x", "log_retention": {"hot": "1h"}}}}})
    result = sync_config_servers(config.mcps.servers)
    assert result.created == ["git"]
    assert MCPServer.objects.get(id="git").log_retention == {"hot": "1h"}
    # Removing it from the entry is a change back to the config's ages.
    assert sync_config_servers({"git": {"command": "x"}}).updated == ["git"]
    assert MCPServer.objects.get(id="git").log_retention is None
