"""PostgreSQL-only indexing of logs: full-text GIN index, no LIKE index on the id.

The GIN expression matches the `websearch` lookup in logs.models exactly, so the
planner uses it. The varchar_pattern_ops index Django adds for a CharField primary key
serves prefix LIKE on ids, which nothing asks for, and would tax every ingested row.
SQLite gets neither; search there falls back to LIKE.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

FTS_INDEX = "log_message_fts"


def _like_indexes(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'logs_logentry' "
        "AND indexname LIKE 'logs_logentry_id_%%_like'"
    )
    return [row[0] for row in cursor.fetchall()]


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {FTS_INDEX} ON logs_logentry "
        "USING GIN (to_tsvector('simple', message))"
    )
    with schema_editor.connection.cursor() as cursor:
        for name in _like_indexes(cursor):
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {FTS_INDEX}")


class Migration(migrations.Migration):
    dependencies = [("logs", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
