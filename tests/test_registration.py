"""Registering managed servers: host JSON import, config sync, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mcps.models import MCPServer
from mcps.registration import EntryError, fields_from_entry, register, slug_for, sync_config_servers

pytestmark = pytest.mark.django_db

HOST_CONFIG = {
    "mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time", "--local-timezone=UTC"]},
        "My Git!": {"command": "python", "args": ["-m", "mcp_server_git"], "env": {"A": "1"}, "cwd": "/tmp"},
        "remote": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Token": "t"}},
        "legacy": {"url": "http://127.0.0.1:9/sse", "type": "sse"},
        "broken": {"args": ["no command"]},
    }
}


def test_slugs_are_safe_to_prefix_tool_names() -> None:
    assert slug_for("My Git!") == "My-Git"
    assert slug_for("a__b") == "a_b"
    assert slug_for("!!!") == "server"


def test_entries_map_to_transports() -> None:
    assert fields_from_entry({"command": "x"})["transport"] == "stdio"
    assert fields_from_entry({"url": "http://h/mcp"})["transport"] == "streamable_http"
    assert fields_from_entry({"url": "http://h/sse", "type": "sse"})["transport"] == "sse"
    with pytest.raises(EntryError, match="either 'command'"):
        fields_from_entry({"command": "x", "url": "http://h"})
    with pytest.raises(EntryError, match="unknown key"):
        fields_from_entry({"command": "x", "bogus": 1})
    with pytest.raises(EntryError, match="unknown transport 'ws'"):
        fields_from_entry({"url": "http://h", "type": "ws"})


def test_import_creates_each_valid_server_and_reports_the_broken_one(tmp_path: Path, capsys) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(HOST_CONFIG))
    with pytest.raises(SystemExit) as exit_:
        call_command("import_mcp_config", str(path))
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert "error broken: command: required (or 'url' for an HTTP server)" in err
    assert "4 server(s) imported, 1 failed" in out
    git = MCPServer.objects.get(id="My-Git")
    assert (git.transport, git.command, git.args, git.env, git.cwd) == (
        "stdio",
        "python",
        ["-m", "mcp_server_git"],
        {"A": "1"},
        "/tmp",
    )
    assert git.source == "import" and git.managed
    assert MCPServer.objects.get(id="remote").headers == {"X-Token": "t"}
    assert MCPServer.objects.get(id="legacy").transport == "sse"


def test_reimporting_the_same_file_changes_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"time": HOST_CONFIG["mcpServers"]["time"]}}))
    call_command("import_mcp_config", str(path))
    call_command("import_mcp_config", str(path))
    assert "unchanged time" in capsys.readouterr().out


def test_import_names_a_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_mcp_config", str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_mcp_config", str(bad))
    bad.write_text('{"servers": {}}')
    with pytest.raises(CommandError, match="mcpServers"):
        call_command("import_mcp_config", str(bad))


def test_validation_names_the_field() -> None:
    result = register("x", {"command": "run", "args": "not-a-list"}, "api")
    assert result.errors == {"x": "args: expected a list of strings"}
    result = register("h", {"url": "not a url"}, "api")
    assert "url: Enter a valid URL." in result.errors["h"]


def test_a_server_first_seen_through_ingest_becomes_managed_when_registered() -> None:
    MCPServer.objects.create(id="time", name="time")
    result = register("time", {"command": "uvx", "args": ["mcp-server-time"]}, "api")
    assert result.updated == ["time"]
    assert MCPServer.objects.get(id="time").transport == "stdio"


def test_config_sync_registers_and_disables_removed_servers() -> None:
    sync_config_servers({"a": {"command": "x"}, "b": {"command": "y"}})
    result = sync_config_servers({"a": {"command": "x"}})
    assert result.updated == ["b"] and result.unchanged == ["a"]
    assert list(MCPServer.objects.managed().filter(enabled=True).values_list("id", flat=True)) == ["a"]


def test_mission_controls_own_endpoint_name_cannot_be_taken() -> None:
    result = register("Mission Control", {"command": "x"}, "api")
    assert result.errors == {
        "Mission Control": "name: 'mission-control' is Mission Control's own endpoint; pick another name"
    }
    aggregate = MCPServer.objects.get(id="mission-control")
    assert aggregate.transport == "" and aggregate.source == "gateway"


@pytest.mark.django_db(transaction=True)
async def test_a_registered_server_is_announced_on_global_without_its_secrets() -> None:
    from asgiref.sync import sync_to_async

    from tests.conftest import Socket

    async with Socket() as ws:
        await ws.subscribe("global")
        await sync_to_async(register)(
            "remote", {"url": "http://127.0.0.1:9/mcp?key=s3cret", "headers": {"X-Token": "t"}}, "api"
        )
        frame = await ws.recv()
        await sync_to_async(register)("remote", {"url": "http://127.0.0.1:9/mcp?key=other"}, "api")
        assert await ws.nothing()  # an update is no registration
    (announced,) = frame["payload"]["events"]
    assert announced["type"] == "mcp.registered"
    assert (announced["mcp_id"], announced["source"], announced["transport"]) == (
        "remote",
        "api",
        "streamable_http",
    )
    assert "s3cret" not in str(frame) and "X-Token" not in str(frame)
