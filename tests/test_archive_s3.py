"""Warm and cold archives in S3-compatible storage through django-storages, against a local
moto S3 server on the loopback (real HTTP, real boto3 signing): archive, tier move, read,
restore and expiry go through the bucket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from django.utils import timezone
from moto.server import ThreadedMotoServer

from logs import archive
from logs.models import ArchiveDay, LogEntry
from tests.conftest import event, store
from tests.processes import free_port

pytestmark = pytest.mark.django_db

BUCKET = "mc-archive"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "location": "mission-control/logs",
                "file_overwrite": True,
            },
        },
    }
    yield client  # (changing STORAGES resets Django's storage handler)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def days_ago(days: int) -> datetime:
    day = (timezone.now() - timedelta(days=days)).date()
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)


def keys(client: Any) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_archival_to_s3_round_trips_a_day_through_the_bucket(bucket: Any, settings: Any) -> None:
    day = days_ago(10)
    store(
        event(
            "log", id="s1", mcp_id="alpha", timestamp=day.isoformat(), message="ünïcode ✓", context={"n": 1}
        ),
        event("log", id="s2", mcp_id="beta", timestamp=(day + timedelta(hours=1)).isoformat()),
        event("log", id="hot", mcp_id="alpha", timestamp=days_ago(1).isoformat()),
    )
    archived = LogEntry.objects.filter(id__in=["s1", "s2"]).order_by("timestamp")
    before = [r.as_event() for r in archived]
    assert (archive.archive().rows, list(LogEntry.objects.values_list("id", flat=True))) == (2, ["hot"])
    stamp = f"{day:%Y/%m/%d}"
    assert keys(bucket) == [
        f"mission-control/logs/warm/{stamp}/alpha.jsonl.gz",
        f"mission-control/logs/warm/{stamp}/beta.jsonl.gz",
    ]
    read = list(archive.read(day - timedelta(hours=1), day + timedelta(hours=2)))
    assert [r["id"] for r in read] == ["s1", "s2"] and read[0]["message"] == "ünïcode ✓"

    assert archive.restore(day.date(), day.date()) == (2, 2)
    assert [
        r.as_event() for r in LogEntry.objects.filter(id__in=["s1", "s2"]).order_by("timestamp")
    ] == before


def test_warm_files_move_to_cold_and_expire_in_the_bucket(bucket: Any, settings: Any) -> None:
    store(event("log", id="aging", mcp_id="alpha", timestamp=days_ago(10).isoformat()))
    archive.archive()
    settings.LOG_RETENTION = replace(settings.LOG_RETENTION, warm=9 * 86400)
    assert archive.archive().moved_cold == 1
    (key,) = keys(bucket)
    assert "/cold/" in key and ArchiveDay.objects.get().tier == "cold"
    body = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert [r["id"] for r in archive.decode_rows(body)] == ["aging"]
    settings.LOG_RETENTION = replace(settings.LOG_RETENTION, cold=9 * 86400)
    assert archive.archive().expired == 1
    assert keys(bucket) == [] and not ArchiveDay.objects.exists()
