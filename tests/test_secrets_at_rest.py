"""MCP servers' env and headers are encrypted at rest, masked on the way out, usable by the gateway."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from logs.models import LogEntry
from mcps.gateway.connection import Backoff
from mcps.gateway.service import Gateway
from mcps.models import MCPServer
from tests.mcp_servers import register, status, until

API_KEY = "probe-value-7f3a9c"  # not a redaction pattern: it must reach the logs as is
TOKEN = "Bearer hdr-secret-55aa"


def raw_columns(server_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT env, headers FROM mcps_mcpserver WHERE id = %s", [server_id])
        env, headers = cursor.fetchone()
    return str(env), str(headers)


@pytest.mark.django_db
def test_the_database_holds_ciphertext_and_the_model_plain_values() -> None:
    MCPServer.objects.create(
        id="remote",
        name="remote",
        transport="streamable_http",
        url="https://mcp.example/mcp",
        headers={"Authorization": TOKEN},
        env={"API_KEY": API_KEY},
    )
    env, headers = raw_columns("remote")
    assert API_KEY not in env and "API_KEY" not in env
    assert TOKEN not in headers and "Authorization" not in headers
    server = MCPServer.objects.get(id="remote")
    assert server.env == {"API_KEY": API_KEY}
    assert server.connection_spec()["headers"] == {"Authorization": TOKEN}
    assert raw_columns(MCPServer.objects.create(id="plain", name="plain").id) == ("", "")


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_new_key_and_the_old_key_can_go(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    MCPServer.objects.create(id="srv", name="srv", env={"API_KEY": API_KEY})
    settings.FERNET_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.FERNET_KEYS = [new]
    settings.SECRET_KEY = "another-secret-key-" * 3  # the derived key is no help either
    assert MCPServer.objects.get(id="srv").env == {"API_KEY": API_KEY}
    settings.FERNET_KEYS = [old]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        MCPServer.objects.get(id="srv")


@pytest.mark.django_db
def test_rest_and_admin_never_show_a_secret_value(client: Client) -> None:
    created = client.post(
        "/api/mcps",
        {"id": "remote", "url": "https://mcp.example/mcp", "headers": {"Authorization": TOKEN}},
        content_type="application/json",
    )
    assert created.status_code in (200, 201), created.content
    assert TOKEN not in created.content.decode()
    detail = client.get("/api/mcps/remote")
    assert detail.json()["connection"]["headers"] == {"Authorization": "***"}

    User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    admin = Client()
    admin.login(username="admin", password="pw-admin-123")
    page = admin.get("/admin/mcps/mcpserver/remote/change/")
    assert page.status_code == 200
    assert "hdr-secret" not in page.content.decode()
    assert "Authorization" in page.content.decode()


@pytest.mark.django_db
def test_the_admin_keeps_a_masked_value_and_saves_a_new_one() -> None:
    MCPServer.objects.create(
        id="srv", name="srv", transport="stdio", command="uvx", env={"API_KEY": API_KEY, "OLD": "x"}
    )
    User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    admin = Client()
    admin.login(username="admin", password="pw-admin-123")
    form = {
        "id": "srv",
        "name": "srv",
        "enabled": "on",
        "source": "admin",
        "transport": "stdio",
        "command": "uvx",
        "args": "[]",
        "env": '{"API_KEY": "***", "NEW": "fresh"}',
        "headers": "{}",
        "tools-TOTAL_FORMS": "0",
        "tools-INITIAL_FORMS": "0",
    }
    response = admin.post("/admin/mcps/mcpserver/srv/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert MCPServer.objects.get(id="srv").env == {"API_KEY": API_KEY, "NEW": "fresh"}


# A stdio server that reports the env var it was started with on stderr (all but its first
# character: the whole value is masked in what is stored about the server), then serves
# as mcp-server-time.
REPORTING_SERVER = f'echo "probe says ${{MC_PROBE#?}}" >&2; exec {sys.executable} -m mcp_server_time'


@pytest.mark.django_db(transaction=True)
async def test_the_gateway_starts_a_stdio_server_with_its_decrypted_env() -> None:
    await sync_to_async(register)(
        "probe", transport="stdio", command="sh", args=["-c", REPORTING_SERVER], env={"MC_PROBE": API_KEY}
    )
    env, _headers = await sync_to_async(raw_columns)("probe")
    assert API_KEY not in env
    gateway = Gateway(Backoff(0.1, 0.5))
    await gateway.start()
    try:
        await until(lambda: status("probe") == "connected", what="probe to connect")
        await until(
            lambda: LogEntry.objects.filter(service="probe", message=f"probe says {API_KEY[1:]}").exists(),
            what="the server to report its env var",
        )
    finally:
        await gateway.stop()


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_reverses() -> None:
    before, after = [("mcps", "0003_source_gateway")], [("mcps", "0004_encrypted_secrets")]
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps.get_model("mcps", "MCPServer")
        old.objects.create(id="legacy", name="legacy", env={"API_KEY": API_KEY}, headers={})
        assert API_KEY in raw_columns("legacy")[0]

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        env, headers = raw_columns("legacy")
        assert API_KEY not in env and headers == ""
        # The model as of the migration (later migrations add columns not there yet).
        new = executor.loader.project_state(after).apps.get_model("mcps", "MCPServer")
        assert new.objects.get(id="legacy").env == {"API_KEY": API_KEY}

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps.get_model("mcps", "MCPServer")
        assert old.objects.get(id="legacy").env == {"API_KEY": API_KEY}
        assert old.objects.get(id="legacy").headers == {}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
