"""Registering managed servers: from MCP hosts' JSON, the config file, the API, a registry.

Every path ends in `register`: one entry in the `mcpServers` shape MCP hosts use
(Claude Desktop, Cursor, VS Code), validated the same way, upserted by slug.

    {"command": "uvx", "args": ["mcp-server-time"], "env": {...}, "cwd": "..."}
    {"url": "https://host/mcp", "headers": {...}}                  Streamable HTTP
    {"url": "https://host/sse", "type": "sse"}                     legacy SSE

Keys of Mission Control's own go with either (an entry without them has none):

    "default_arguments": {"*": {"project_path": "/srv/app"}}      under routed calls' arguments
    "log_files": [{"path": "/var/log/app.jsonl", "format": "jsonl"}]   tailed into logs
    "log_retention": {"hot": "3 days", "cold": "90 days"}         over the config's log_retention
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from mcps.models import (
    AGGREGATE_ID,
    MCPServer,
    default_arguments_problem,
    log_files_problem,
    log_retention_problem,
)

_HTTP_TYPES = {"http", "streamable-http", "streamable_http"}
_KNOWN_KEYS = {
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "transport",
    "enabled",
    "name",
    "default_arguments",
    "log_files",
    "log_retention",
}


def slug_for(name: str) -> str:
    """A server id from a host's name for it: 'My Git!' -> 'My-Git'."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")
    slug = re.sub(r"_{2,}", "_", slug)
    return slug[:100] or "server"


class EntryError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def fields_from_entry(entry: Any) -> dict[str, Any]:
    """MCPServer fields from one `mcpServers` entry; EntryError naming the bad key."""
    if not isinstance(entry, dict):
        raise EntryError("entry", "expected an object with 'command' or 'url'")
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        expected = ", ".join(sorted(_KNOWN_KEYS))
        raise EntryError(sorted(unknown)[0], f"unknown key; expected some of {expected}")
    kind = str(entry.get("transport") or entry.get("type") or "").lower()
    if "command" in entry and "url" in entry:
        raise EntryError("command", "give either 'command' (stdio) or 'url' (HTTP), not both")
    if "command" in entry:
        if kind not in ("", "stdio"):
            raise EntryError("type", f"{kind!r} does not go with 'command'; use 'stdio'")
        fields: dict[str, Any] = {
            "transport": MCPServer.Transport.STDIO,
            "command": entry["command"],
            "args": entry.get("args", []),
            "env": entry.get("env", {}),
            "cwd": entry.get("cwd", ""),
            "url": "",
            "headers": {},
        }
    elif "url" in entry:
        if kind == "sse":
            transport = MCPServer.Transport.SSE
        elif kind in _HTTP_TYPES or kind == "":
            transport = MCPServer.Transport.STREAMABLE_HTTP
        else:
            raise EntryError("type", f"unknown transport {kind!r}; expected http, streamable-http or sse")
        fields = {
            "transport": transport,
            "url": entry["url"],
            "headers": entry.get("headers", {}),
            "command": "",
            "args": [],
            "env": {},
            "cwd": "",
        }
    else:
        raise EntryError("command", "required (or 'url' for an HTTP server)")
    if not isinstance(fields["command"], str) or not isinstance(fields["url"], str):
        raise EntryError("command" if fields["command"] else "url", "expected a string")
    if not isinstance(fields["cwd"], str):
        raise EntryError("cwd", "expected a string")
    fields["default_arguments"] = entry.get("default_arguments") or {}
    fields["log_files"] = entry.get("log_files") or []
    fields["log_retention"] = entry.get("log_retention") or None
    for key, problem in (
        ("default_arguments", default_arguments_problem(fields["default_arguments"])),
        ("log_files", log_files_problem(fields["log_files"])),
        ("log_retention", log_retention_problem(fields["log_retention"])),
    ):
        if problem is not None:
            raise EntryError(key, problem)
    if "enabled" in entry:
        if not isinstance(entry["enabled"], bool):
            raise EntryError("enabled", "expected true or false")
        fields["enabled"] = entry["enabled"]
    return fields


@dataclass
class Registration:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def register(name: str, entry: Any, source: str, result: Registration | None = None) -> Registration:
    """Create or update the managed server `name` from its entry; errors are collected."""
    result = result if result is not None else Registration()
    slug = slug_for(name)
    if slug.lower() == AGGREGATE_ID:
        result.errors[name] = f"name: {AGGREGATE_ID!r} is Mission Control's own endpoint; pick another name"
        return result
    try:
        fields = fields_from_entry(entry)
    except EntryError as exc:
        result.errors[name] = str(exc)
        return result
    with transaction.atomic():
        server = MCPServer.objects.select_for_update().filter(id=slug).first()
        created = server is None
        if server is None:
            server = MCPServer(id=slug, name=str(entry.get("name") or name), source=source)
        before = _settings(server)
        for key, value in fields.items():
            setattr(server, key, value)
        try:
            server.full_clean(exclude=["status"])
        except ValidationError as exc:
            result.errors[name] = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            return result
        if created:
            server.save()
            result.created.append(slug)
        elif _settings(server) != before:
            server.save()
            result.updated.append(slug)
        else:
            result.unchanged.append(slug)
    return result


def _settings(server: MCPServer) -> tuple[Any, ...]:
    """What an entry sets on a server: a change of it is an update."""
    return (
        server.connection_spec(),
        server.enabled,
        server.default_arguments,
        server.log_files,
        server.log_retention,
    )


def register_host_config(data: Any, source: str) -> Registration:
    """Every server of a host's `{"mcpServers": {...}}` document."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise EntryError("mcpServers", "expected a JSON object with an 'mcpServers' object")
    result = Registration()
    for name, entry in data["mcpServers"].items():
        register(name, entry, source, result)
    return result


def sync_config_servers(servers: dict[str, Any]) -> Registration:
    """Make the config file's `mcps.servers` true: register each; disable the ones removed."""
    result = Registration()
    for name, entry in servers.items():
        register(name, entry, MCPServer.Source.CONFIG, result)
    listed = {slug_for(name) for name in servers}
    removed = MCPServer.objects.filter(source=MCPServer.Source.CONFIG, enabled=True).exclude(id__in=listed)
    for slug in removed.values_list("id", flat=True):
        result.updated.append(slug)
    removed.update(enabled=False)
    return result
