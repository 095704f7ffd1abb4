"""MCP servers' env and headers encrypted at rest (missioncontrol/encryption.py).

The columns become text (PostgreSQL casts the jsonb to its text), then every row's JSON
is replaced by its Fernet token, with raw SQL so that neither step depends on how the
field reads or writes. Reversed, each token is decrypted back to JSON before the
columns become JSON again.
"""

import json

from django.db import migrations

import missioncontrol.encryption
from missioncontrol.encryption import decrypt, encrypt, is_encrypted

COLUMNS = ("env", "headers")


def _rewrite(apps, schema_editor, convert):
    table = schema_editor.quote_name(apps.get_model("mcps", "MCPServer")._meta.db_table)
    columns = ", ".join(schema_editor.quote_name(c) for c in COLUMNS)
    assignments = ", ".join(f"{schema_editor.quote_name(c)} = %s" for c in COLUMNS)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {columns} FROM {table}")
        rows = cursor.fetchall()
        for server_id, *values in rows:
            converted = [convert(v) for v in values]
            if converted != list(values):
                cursor.execute(f"UPDATE {table} SET {assignments} WHERE id = %s", [*converted, server_id])


def _encrypted(value):
    if value is None or is_encrypted(value):
        return value
    data = json.loads(value) if value else {}
    return encrypt(json.dumps(data, sort_keys=True)) if data else ""


def _decrypted(value):
    if value is None:
        return value
    if not value:
        return "{}"
    return decrypt(value) if is_encrypted(value) else value


def encrypt_rows(apps, schema_editor):
    _rewrite(apps, schema_editor, _encrypted)


def decrypt_rows(apps, schema_editor):
    _rewrite(apps, schema_editor, _decrypted)


class Migration(migrations.Migration):
    dependencies = [
        ("mcps", "0003_source_gateway"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mcpserver",
            name="env",
            field=missioncontrol.encryption.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="mcpserver",
            name="headers",
            field=missioncontrol.encryption.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
