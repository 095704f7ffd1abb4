"""PostgreSQL: the log table becomes partitioned by day (logs/partitions.py); SQLite: unchanged.

The ledger of log event ids is created on both (used on PostgreSQL only, where the
primary key must include the partition key and so no longer keeps ids unique) and filled
with the ids already stored. Rows, indexes (btree and full-text GIN) are kept. Django's
varchar_pattern_ops index on the ledger's id serves nothing and would tax every ingest.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.utils import timezone


def partition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    from logs import partitions

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'logs_logeventid' "
            "AND indexname LIKE 'logs_logeventid_id_%%_like'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        partitions.convert(cursor, timezone.now().date())


def unpartition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    from logs import partitions

    with schema_editor.connection.cursor() as cursor:
        partitions.unconvert(cursor)


class Migration(migrations.Migration):
    dependencies = [("logs", "0005_logsource")]

    operations = [
        migrations.CreateModel(
            name="LogEventId",
            fields=[("id", models.CharField(max_length=200, primary_key=True, serialize=False))],
            options={"verbose_name": "log event id"},
        ),
        migrations.RunPython(partition, unpartition),
    ]
