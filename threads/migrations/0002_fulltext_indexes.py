"""PostgreSQL-only GIN indexes for full-text search of transcripts, steps and inputs.

Each expression matches the `websearch` lookup (missioncontrol.textsearch) exactly, so
the planner uses it. SQLite gets none; search there falls back to LIKE.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

INDEXES = {
    "message_content_fts": ("threads_llmmessage", "content"),
    "step_description_fts": ("threads_executionstep", "description"),
    "thread_input_fts": ("threads_thread", "user_input"),
}


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING GIN (to_tsvector('simple', {column}))"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("threads", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
