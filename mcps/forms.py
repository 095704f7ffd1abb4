"""The forms of the servers pages: one server (add, edit) and an `mcpServers` document.

A form turns what a person typed into the `mcpServers` entry every other path registers
(mcps/registration.py) and checks it with the same functions: `fields_from_entry` for
the entry's shape, the model's `clean` for the rest. Only reading the text boxes is done
here (one argument per line, `NAME=value` lines, JSON); each problem is reported on the
field it concerns.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from mcps.masking import MASK
from mcps.models import LOG_FORMATS, MCPServer
from mcps.registration import EntryError, Registration, fields_from_entry, register, register_host_config

TRANSPORTS = [
    (MCPServer.Transport.STDIO.value, "stdio (a command it runs)"),
    (MCPServer.Transport.STREAMABLE_HTTP.value, "Streamable HTTP (a URL)"),
    (MCPServer.Transport.SSE.value, "legacy SSE (a URL)"),
]
# Where an entry key's problem shows: the form field that sets it.
FIELD_OF = {"type": "transport", "transport": "transport", "name": "id", "entry": None, "id": "id"}
# Ids whose server page would be hidden behind these pages' own addresses.
RESERVED_IDS = frozenset({"new", "import"})
MONO = {"class": "mono", "spellcheck": "false", "autocomplete": "off"}


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


class ServerForm(forms.Form):
    """One managed server. Editing: `server` is the stored one, whose secrets stay unless
    a new value is typed (they are shown back as `***`)."""

    id = forms.CharField(
        label="Id",
        max_length=100,
        help_text="Letters, digits, - and _: it prefixes its tools on /mcp (time → time__get_current_time).",
    )
    name = forms.CharField(label="Display name", max_length=200, required=False)
    transport = forms.ChoiceField(label="Transport", choices=TRANSPORTS, initial="stdio")
    command = forms.CharField(label="Command", max_length=1000, required=False, widget=forms.TextInput(MONO))
    args = forms.CharField(
        label="Arguments",
        required=False,
        widget=forms.Textarea({**MONO, "rows": 3}),
        help_text="One per line.",
    )
    env = forms.CharField(
        label="Environment",
        required=False,
        widget=forms.Textarea({**MONO, "rows": 3}),
        help_text="NAME=value, one per line. Values are stored encrypted and never shown again.",
    )
    cwd = forms.CharField(
        label="Working directory", max_length=1000, required=False, widget=forms.TextInput(MONO)
    )
    url = forms.CharField(label="URL", max_length=1000, required=False, widget=forms.TextInput(MONO))
    headers = forms.CharField(
        label="Headers",
        required=False,
        widget=forms.Textarea({**MONO, "rows": 3}),
        help_text="Name: value, one per line (Authorization: Bearer …). Stored encrypted, never shown again.",
    )
    default_arguments = forms.CharField(
        label="Default arguments",
        required=False,
        widget=forms.Textarea({**MONO, "rows": 3}),
        help_text='JSON, per tool name or "*" for all: {"*": {"project_path": "/srv/app"}}. '
        "A call gets them unless it gives its own.",
    )
    log_files = forms.CharField(
        label="Log files",
        required=False,
        widget=forms.Textarea({**MONO, "rows": 2}),
        help_text=f"One per line: the format ({', '.join(LOG_FORMATS)}), a space, the path. "
        "`kiwi` alone reads Kiwi's own log.",
    )
    enabled = forms.BooleanField(
        label="Enabled (the gateway holds a session to it)", required=False, initial=True
    )

    def __init__(self, *args: Any, server: MCPServer | None = None, **kwargs: Any) -> None:
        self.server = server
        if server is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_of(server)
        super().__init__(*args, **kwargs)
        if server is not None:
            self.fields["id"].disabled = True
            if server.env:
                self.fields["env"].help_text += f" {MASK} keeps the stored value."
            if server.headers:
                self.fields["headers"].help_text += f" {MASK} keeps the stored value."
        self.entry: dict[str, Any] = {}

    # -- reading the text boxes ----------------------------------------------------------

    def clean_args(self) -> list[str]:
        return [line for line in self.cleaned_data["args"].splitlines() if line.strip()]

    def _pairs(self, field: str, separator: str, stored: dict[str, str]) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for number, line in _lines(self.cleaned_data[field]):
            key, found, value = line.partition(separator)
            key, value = key.strip(), value.strip()
            if not found or not key:
                shape = "NAME=value" if separator == "=" else "Name: value"
                raise ValidationError(f"line {number}: expected {shape}")
            pairs[key] = stored[key] if value == MASK and key in stored else value
        return pairs

    def clean_env(self) -> dict[str, str]:
        return self._pairs("env", "=", self.server.env if self.server else {})

    def clean_headers(self) -> dict[str, str]:
        return self._pairs("headers", ":", self.server.headers if self.server else {})

    def clean_default_arguments(self) -> Any:
        text = self.cleaned_data["default_arguments"].strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from exc

    def clean_log_files(self) -> list[dict[str, str]]:
        entries = []
        for _number, line in _lines(self.cleaned_data["log_files"]):
            fmt, _, path = line.partition(" ")
            if fmt not in LOG_FORMATS:  # no format word: a path, read as JSON lines
                entries.append({"path": line, "format": "jsonl"})
            elif path.strip():
                entries.append({"path": path.strip(), "format": fmt})
            else:
                entries.append({"format": fmt})
        return entries

    # -- checking the entry as registration does ------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        slug = data["id"]  # add_error takes a field out of cleaned_data
        self.entry = self._entry(data)
        try:
            fields = fields_from_entry(self.entry)
        except EntryError as exc:
            self._add_entry_error(exc.field, exc.reason)
            return data
        if self.server is None and slug in RESERVED_IDS:
            self.add_error("id", "reserved: /servers/new and /servers/import are this page's own addresses")
        elif self.server is None and MCPServer.objects.filter(id=slug).exists():
            self.add_error("id", "a server with this id exists: edit it from its page")
        candidate = MCPServer(id=slug, name=data["name"] or slug, **fields)
        if self.server is not None:
            candidate.log_retention = self.server.log_retention
        try:
            candidate.full_clean(exclude=["status", "source"], validate_unique=False)
        except ValidationError as exc:
            for field, reasons in exc.message_dict.items():
                self._add_entry_error(field, " ".join(reasons))
        return data

    def _entry(self, data: dict[str, Any]) -> dict[str, Any]:
        """The `mcpServers` entry the form describes (what the REST API and import take)."""
        entry: dict[str, Any] = {"name": data["name"] or data["id"], "enabled": data["enabled"]}
        if data["transport"] == MCPServer.Transport.STDIO:
            entry.update(command=data["command"], args=data["args"], env=data["env"], cwd=data["cwd"])
        else:
            kind = "sse" if data["transport"] == MCPServer.Transport.SSE else "streamable-http"
            entry.update(url=data["url"], headers=data["headers"], type=kind)
        if data["default_arguments"]:
            entry["default_arguments"] = data["default_arguments"]
        if data["log_files"]:
            entry["log_files"] = data["log_files"]
        if self.server is not None and self.server.log_retention:
            entry["log_retention"] = self.server.log_retention  # not on this form: kept as it is
        return entry

    def _add_entry_error(self, key: str, reason: str) -> None:
        field = FIELD_OF.get(key, key)
        if field in self.fields:
            self.add_error(field, reason)
        else:
            self.add_error(None, f"{key}: {reason}")

    def connection_spec(self) -> dict[str, Any]:
        """The connection of a valid form, as the gateway takes it (to test it before saving)."""
        fields = fields_from_entry(self.entry)
        keys = ("transport", "command", "args", "env", "cwd", "url", "headers")
        return {key: fields[key] for key in keys}

    def save(self, source: str) -> Registration:
        """Register the server; a problem found only now (a race) lands on its field."""
        result = register(self.cleaned_data["id"], self.entry, source)
        if self.server is not None and not result.errors:  # registration names only new servers
            MCPServer.objects.filter(id=self.server.id).update(name=self.entry["name"])
        for reasons in result.errors.values():
            for problem in reasons.split("; "):
                key, _, reason = problem.partition(": ")
                self._add_entry_error(key, reason)
        return result


def initial_of(server: MCPServer) -> dict[str, Any]:
    """What the form shows for a stored server: env and header values masked."""
    transport = server.transport or MCPServer.Transport.STDIO
    return {
        "id": server.id,
        "name": server.name if server.name != server.id else "",
        "transport": transport,
        "command": server.command,
        "args": "\n".join(server.args),
        "env": "\n".join(f"{key}={MASK}" for key in server.env),
        "cwd": server.cwd,
        "url": server.url,
        "headers": "\n".join(f"{key}: {MASK}" for key in server.headers),
        "default_arguments": json.dumps(defaults, indent=2) if (defaults := server.default_arguments) else "",
        "log_files": "\n".join(_log_file_line(entry) for entry in server.log_files),
        "enabled": server.enabled,
    }


def _log_file_line(entry: dict[str, str]) -> str:
    fmt = entry.get("format", "jsonl")
    return f"{fmt} {entry['path']}" if entry.get("path") else fmt


class ImportForm(forms.Form):
    """Several servers at once, from the `mcpServers` JSON MCP hosts write."""

    config = forms.CharField(
        label="mcpServers JSON",
        widget=forms.Textarea({**MONO, "rows": 8}),
        help_text='As Claude Desktop, Cursor or VS Code write it: {"mcpServers": {"time": {"command": "uvx", '
        '"args": ["mcp-server-time"]}}}. A server already there by the same id is updated.',
    )

    def clean_config(self) -> Any:
        try:
            data = json.loads(self.cleaned_data["config"])
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
            raise ValidationError('expected a JSON object with an "mcpServers" object')
        return data

    def save(self) -> Registration:
        try:
            return register_host_config(self.cleaned_data["config"], MCPServer.Source.IMPORT)
        except EntryError as exc:  # checked in clean_config; kept for a document changed since
            self.add_error("config", str(exc))
            return Registration()
