"""MCP servers known to Mission Control and the keys they push events with."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any, Self

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from mcps.masking import masked_spec
from missioncontrol.config import ConfigError, RetentionConfig, parse_retention
from missioncontrol.encryption import EncryptedJSONField
from missioncontrol.models import HashedSecret, HashedSecretQuerySet
from missioncontrol.redaction import redact_text

LAST_SEEN_RESOLUTION = timedelta(seconds=5)
# Server id -> monotonic time this process last wrote its row (see register_seen).
_registered: dict[str, float] = {}


class MCPServerQuerySet(models.QuerySet["MCPServer"]):
    def register_seen(self, ids: set[str], referenced: set[str] | None = None) -> None:
        """Record that servers `ids` pushed events now; make sure `referenced` rows exist.

        A process writes a server's last_seen at most once per LAST_SEEN_RESOLUTION:
        each batch writing the same row would serialize concurrent ingest transactions
        on its lock, and most batches come from a server seen a moment ago. Servers that
        rows of this batch will reference (threads) are always inserted-if-missing, which
        takes no lock on an existing row.
        """
        now = time.monotonic()
        stale = {i for i in ids if now - _registered.get(i, -1e9) > LAST_SEEN_RESOLUTION.total_seconds()}
        create = stale | (referenced or set())
        if not create:
            return
        at = timezone.now()
        self.bulk_create([MCPServer(id=i, name=i, last_seen=at) for i in create], ignore_conflicts=True)
        if stale:
            old = Q(last_seen__isnull=True) | Q(last_seen__lt=at - LAST_SEEN_RESOLUTION)
            self.filter(old, id__in=stale).update(last_seen=at)
            transaction.on_commit(lambda: _registered.update(dict.fromkeys(stale, now)))

    def reencrypt_secrets(self) -> int:
        """Write every server's env and headers again, encrypted with the first key; how many."""
        servers = list(self.only("id", "env", "headers"))
        self.bulk_update(servers, ["env", "headers"], batch_size=500)
        return len(servers)

    def forget_registered(self) -> None:
        """Drop the process's memory of registered servers (one was deleted, say)."""
        _registered.clear()

    def managed(self) -> Self:
        return self.exclude(transport="")

    def connection_specs(self) -> dict[str, dict[str, Any]]:
        """id -> connection spec of every enabled managed server (what the gateway holds)."""
        return {s.id: s.connection_spec() for s in self.managed().filter(enabled=True)}

    def default_arguments(self) -> dict[str, dict[str, Any]]:
        """id -> default_arguments of every enabled managed server that has some."""
        rows = self.managed().filter(enabled=True).values_list("id", "default_arguments")
        return {server_id: defaults for server_id, defaults in rows if defaults}

    def log_retentions(self, default: RetentionConfig) -> dict[str, RetentionConfig]:
        """id -> the log retention of every server with its own (its ages over `default`), one query."""
        rows = self.filter(log_retention__isnull=False).values_list("id", "log_retention")
        return {server_id: retention_of(value, default) for server_id, value in rows if value}

    def log_file_sources(self) -> list[tuple[str, str, str]]:
        """(server id, path, format) of every log file of an enabled server, managed or not."""
        sources = []
        for server in self.filter(enabled=True).only("id", "env", "log_files"):
            if server.log_files:
                sources.extend((server.id, path, fmt) for path, fmt in server.log_file_specs())
        return sources

    def record_status(self, server_id: str, status: str, error: str) -> None:
        # A failed connection's error may quote its URL or command line, secrets included.
        fields: dict[str, Any] = {"status": status, "last_error": redact_text(error)}
        if status == MCPServer.Status.CONNECTED:
            fields["last_seen"] = timezone.now()
        self.filter(id=server_id).update(**fields)

    def record_connected(self, server_id: str, info: dict[str, Any], catalog: dict[str, list[Any]]) -> None:
        """What the server said on connect, and its catalog, replacing the previous ones."""
        with transaction.atomic():
            now = timezone.now()
            self.filter(id=server_id).update(
                protocol_version=info["protocol_version"],
                server_info=info["server_info"],
                capabilities=info["capabilities"],
                instructions=info["instructions"],
                connected_at=now,
                last_seen=now,
            )
            replace_catalog(server_id, catalog)


# Mission Control's own aggregated endpoint (/mcp, mcp_proxy): the server its agents'
# threads run on; their steps name the servers each call was routed to.
AGGREGATE_ID = "mission-control"


class MCPServer(models.Model):
    """An MCP server: one the gateway connects to, or one that only pushes events.

    A server with a transport is managed: the gateway holds a session to it, keeps its
    catalog (tools, resources, prompts) and its health. One without (the default for
    servers first seen through ingest) is only a name events refer to.
    """

    global_because = "servers are shared: every team's agents call the same ones"

    class Status(models.TextChoices):
        UNKNOWN = "unknown"
        CONNECTING = "connecting"
        CONNECTED = "connected"
        DEGRADED = "degraded"
        DISCONNECTED = "disconnected"

    class Transport(models.TextChoices):
        NONE = "", "none (pushes events only)"
        STDIO = "stdio", "stdio"
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
        SSE = "sse", "legacy SSE"

    class Source(models.TextChoices):
        INGEST = "ingest"
        API = "api"
        ADMIN = "admin"
        UI = "ui", "the servers page"
        CONFIG = "config"
        IMPORT = "import"
        REGISTRY = "registry"
        MDNS = "mdns", "mDNS (found on the local network)"
        GATEWAY = "gateway", "Mission Control itself"

    id = models.CharField(
        primary_key=True,
        max_length=200,
        help_text="Slug: the mcp_id events carry and the prefix of its tools on /mcp.",
    )
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True)

    # How to reach it (managed servers).
    transport = models.CharField(max_length=20, choices=Transport.choices, default="", blank=True)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.INGEST)
    command = models.CharField(max_length=1000, blank=True)
    args = models.JSONField(default=list, blank=True)
    # Secrets live here (API keys, tokens): encrypted at rest.
    env = EncryptedJSONField(default=dict, blank=True)
    cwd = models.CharField(max_length=1000, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    headers = EncryptedJSONField(default=dict, blank=True)

    # Arguments routed calls get unless the caller gives them (Kiwi's `project_path`):
    # {"*": {...}} for every tool, {"tool": {...}} for one (see tool_defaults()).
    default_arguments = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per tool name, or "*" for all: {"*": {"project_path": "/srv/app"}}. '
        "Applied under the caller's arguments, only for properties the tool's input schema declares.",
    )
    # Log files tailed into log entries (logs/tailing.py): [{"path": ..., "format": "jsonl"}].
    log_files = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"path": "/var/log/x.jsonl", "format": "jsonl|text|kiwi"}]; a kiwi entry '
        "without a path reads $USER_SPACE/logs/kiwi-mcp.json (USER_SPACE from the server's env, "
        "else ~/.ai).",
    )

    # Its own log retention over the config's `log_retention` (logs/archive.py): any of
    # hot, warm, cold as durations in the config's format ("3 days", "12h", seconds).
    log_retention = models.JSONField(
        null=True,
        blank=True,
        help_text='Any of hot, warm, cold, e.g. {"hot": "3 days", "cold": "90 days"}; the rest, '
        "and every tier when empty, as log_retention in the config says.",
    )

    # What it said when it connected.
    protocol_version = models.CharField(max_length=40, blank=True)
    server_info = models.JSONField(default=dict, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    instructions = models.TextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = MCPServerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "MCP server"
        permissions = [
            ("call_tool", "Can call a server's tools"),
            ("reconnect_mcpserver", "Can reconnect a server"),
        ]

    def __str__(self) -> str:
        return self.name if self.name == self.id else f"{self.name} ({self.id})"

    def get_absolute_url(self) -> str:
        return reverse("server-detail", args=[self.id])

    @property
    def managed(self) -> bool:
        return bool(self.transport)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not SLUG.match(self.id or ""):
            errors["id"] = "letters, digits, '-' and '_' only (it prefixes tool names on /mcp)"
        if "__" in (self.id or ""):
            errors["id"] = "must not contain '__' (it separates server and tool on /mcp)"
        if self.transport == self.Transport.STDIO and not self.command:
            errors["command"] = "required for a stdio server"
        if self.transport in (self.Transport.STREAMABLE_HTTP, self.Transport.SSE) and not self.url:
            errors["url"] = "required for an HTTP server"
        if not isinstance(self.args, list) or not all(isinstance(a, str) for a in self.args):
            errors["args"] = "expected a list of strings"
        for name in ("env", "headers"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                errors[name] = "expected a mapping of strings to strings"
        if (problem := default_arguments_problem(self.default_arguments)) is not None:
            errors["default_arguments"] = problem
        if (problem := log_files_problem(self.log_files)) is not None:
            errors["log_files"] = problem
        if (problem := log_retention_problem(self.log_retention)) is not None:
            errors["log_retention"] = problem
        if errors:
            raise ValidationError(errors)

    def connection_spec(self) -> dict[str, Any]:
        """What the gateway needs to connect; a change of it means reconnect."""
        return {
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args),
            "env": dict(self.env),
            "cwd": self.cwd,
            "url": self.url,
            "headers": dict(self.headers),
        }

    def connection_for(self, user: Any) -> dict[str, Any]:
        """The connection spec as `user` may see it: env and headers masked, and the url
        and args too unless `user` manages servers (mcps/masking.py)."""
        from missioncontrol import roles

        return masked_spec(self.connection_spec(), reveal=roles.can(user, roles.MANAGE_SERVERS))

    def tool_defaults(self, tool: str) -> dict[str, Any]:
        """The default arguments of `tool`: those for every tool, overridden by its own."""
        return tool_defaults(self.default_arguments, tool)

    def usage(self, steps: Any, window: str) -> dict[str, Any]:
        """How the server was used over `window` (a key of USAGE_WINDOWS), from the tool
        calls among `steps` (an ExecutionStep queryset, already scoped to the reader):
        per tool calls, failures, p50/p95 latency and last error; calls and errors over time."""
        span, bucket = USAGE_WINDOWS[window]
        until = timezone.now()
        since = until - span
        return {
            "mcp_id": self.id,
            "window": window,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "bucket": bucket,
            "tools": steps.tool_stats(self.id, since),
            "series": steps.call_series(self.id, since, until, bucket),
        }

    def log_file_specs(self) -> list[tuple[str, str]]:
        """(path, format) of each configured log file, `~` and `$VARS` expanded."""
        return [resolve_log_file(entry, self.env) for entry in self.log_files]


# The windows a server's usage is shown over: how far back, and the chart's bucket.
USAGE_WINDOWS: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), "minute"),
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
}
DEFAULT_USAGE_WINDOW = "24h"

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
ALL_TOOLS = "*"
LOG_FORMATS = ("jsonl", "text", "kiwi")
KIWI_LOG = "logs/kiwi-mcp.json"  # under Kiwi's user space ($USER_SPACE, default ~/.ai)


def default_arguments_problem(value: Any) -> str | None:
    """Why `value` is no default_arguments mapping ({tool or "*": {argument: value}}), or None."""
    if not isinstance(value, dict):
        return 'expected a mapping of tool name (or "*") to an object of arguments'
    for tool, arguments in value.items():
        if not isinstance(tool, str) or not tool:
            return "tool names must be non-empty strings"
        if not isinstance(arguments, dict):
            return f"{tool}: expected an object of arguments, got {type(arguments).__name__}"
    return None


def tool_defaults(defaults: dict[str, Any], tool: str) -> dict[str, Any]:
    return {**(defaults.get(ALL_TOOLS) or {}), **(defaults.get(tool) or {})}


def with_defaults(
    defaults: dict[str, Any], tool: str, schema: dict[str, Any] | None, arguments: dict[str, Any]
) -> dict[str, Any]:
    """`arguments` over `tool`'s defaults, keeping only the defaults its input schema declares.

    The caller's value always wins; a default for a property the tool does not have is
    left out (one `"*"` default must not break the tools without it).
    """
    declared = (schema or {}).get("properties")
    if not defaults or not isinstance(declared, dict):
        return arguments
    applied = {k: v for k, v in tool_defaults(defaults, tool).items() if k in declared}
    return {**applied, **arguments} if applied else arguments


def schema_with_defaults(defaults: dict[str, Any], tool: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as callers see it: arguments that have a default are no longer required."""
    required = schema.get("required")
    declared = schema.get("properties")
    if not defaults or not isinstance(required, list) or not isinstance(declared, dict):
        return schema
    given = {k for k in tool_defaults(defaults, tool) if k in declared}
    if not given & set(required):
        return schema
    return {**schema, "required": [r for r in required if r not in given]}


def log_retention_problem(value: Any) -> str | None:
    """Why `value` is no log retention override ({hot, warm, cold} durations, or null), or None."""
    if value is None:
        return None
    try:
        parse_retention(value, "log_retention")
    except ConfigError as exc:
        return str(exc).removeprefix("log_retention").lstrip(".: ")
    return None


def retention_of(value: dict[str, Any] | None, default: RetentionConfig) -> RetentionConfig:
    """`default` with a server's own ages (validated ones: see log_retention_problem) over it."""
    return replace(default, **parse_retention(value, "log_retention")) if value else default


def log_files_problem(value: Any) -> str | None:
    """Why `value` is no list of log files ([{"path", "format"}]), or None."""
    if not isinstance(value, list):
        return 'expected a list of {"path": ..., "format": "jsonl|text|kiwi"}'
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            return f'[{index}]: expected an object with "path" and "format"'
        unknown = set(entry) - {"path", "format"}
        if unknown:
            return f"[{index}].{sorted(unknown)[0]}: unknown key; expected path, format"
        fmt = entry.get("format", "jsonl")
        if fmt not in LOG_FORMATS:
            return f"[{index}].format: expected one of {', '.join(LOG_FORMATS)}, got {fmt!r}"
        path = entry.get("path")
        if path is None and fmt != "kiwi":
            return f"[{index}].path: required (only the kiwi format has a default path)"
        if path is not None and (not isinstance(path, str) or not path.strip()):
            return f"[{index}].path: expected a file path"
    return None


def resolve_log_file(entry: dict[str, Any], env: dict[str, str]) -> tuple[str, str]:
    """(absolute path, format) of a log_files entry; `$VAR` from the server's env first."""
    import os
    import string

    fmt = entry.get("format", "jsonl")
    path = entry.get("path")
    if path is None:  # kiwi: $USER_SPACE/logs/kiwi-mcp.json
        user_space = env.get("USER_SPACE") or os.environ.get("USER_SPACE") or "~/.ai"
        path = f"{user_space.rstrip('/')}/{KIWI_LOG}"
    path = string.Template(path).safe_substitute({**os.environ, **env})
    return os.path.abspath(os.path.expanduser(path)), fmt


class CatalogEntry(models.Model):
    """What a server offers (a tool, resource or prompt), as its last listing said."""

    global_because = "a shared server's tools, resources and prompts"

    server = models.ForeignKey(MCPServer, on_delete=models.CASCADE)
    name = models.CharField(max_length=500)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["server", "name"]

    def __str__(self) -> str:
        return f"{self.server_id}/{self.name}"


class Tool(CatalogEntry):
    input_schema = models.JSONField(default=dict, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    annotations = models.JSONField(null=True, blank=True)

    class Meta(CatalogEntry.Meta):
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="tool_unique_per_server")]
        default_related_name = "tools"


class Resource(CatalogEntry):
    uri = models.CharField(max_length=2000)
    mime_type = models.CharField(max_length=200, blank=True)

    class Meta(CatalogEntry.Meta):
        constraints = [models.UniqueConstraint(fields=["server", "uri"], name="resource_unique_per_server")]
        default_related_name = "resources"


class Prompt(CatalogEntry):
    arguments = models.JSONField(default=list, blank=True)

    class Meta(CatalogEntry.Meta):
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="prompt_unique_per_server")]
        default_related_name = "prompts"


class HealthCheckQuerySet(models.QuerySet["HealthCheck"]):
    def latest_for(self, server_id: str) -> HealthCheck | None:
        return self.filter(server_id=server_id).order_by("-checked_at").first()


class HealthCheck(models.Model):
    """One health probe of a managed server: ping (or a cheap list), its latency."""

    global_because = "the health of shared servers"

    server = models.ForeignKey(MCPServer, on_delete=models.CASCADE, related_name="health_checks")
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    objects = HealthCheckQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["server", "-checked_at"], name="health_server_checked")]

    def __str__(self) -> str:
        return f"{self.server_id} {'ok' if self.ok else 'failed'} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class IngestKeyQuerySet(HashedSecretQuerySet["IngestKey"]):
    def issue(self, name: str, mcp: MCPServer | None = None, team: Any = None) -> tuple[IngestKey, str]:
        """Create a key named `name` (for `team`); the raw key is returned once and never stored."""
        key = IngestKey(name=name, mcp=mcp, team=team)
        raw = key.new_secret()
        key.save()
        return key, raw

    def authenticate(self, raw: str) -> IngestKey | None:
        """The active key whose hash matches `raw`, or None."""
        if not raw:
            return None
        return self.matching(raw).select_related("mcp").first()


class IngestKey(HashedSecret):
    """A bearer key that lets one MCP server (or any, if unbound) push events."""

    global_because = "admins only (mcps.view_ingestkey)"
    hash_field, secret_prefix, shown = "key_hash", "mc_", 10

    name = models.CharField(max_length=200, unique=True)
    mcp = models.ForeignKey(
        MCPServer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ingest_keys",
        help_text="Events pushed with this key default to, and may only name, this server.",
    )
    team = models.ForeignKey(
        "missioncontrol.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ingest_keys",
        help_text="Threads and logs pushed with this key belong to this team.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = IngestKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]


def replace_catalog(server_id: str, catalog: dict[str, list[Any]]) -> None:
    """Make the stored tools, resources and prompts of a server exactly `catalog`'s."""
    now = timezone.now()
    with transaction.atomic():
        Tool.objects.filter(server_id=server_id).delete()
        Resource.objects.filter(server_id=server_id).delete()
        Prompt.objects.filter(server_id=server_id).delete()
        Tool.objects.bulk_create(
            [
                Tool(
                    server_id=server_id,
                    name=t["name"],
                    title=t.get("title") or (t.get("annotations") or {}).get("title") or "",
                    description=t.get("description") or "",
                    input_schema=t.get("inputSchema") or {},
                    output_schema=t.get("outputSchema"),
                    annotations=t.get("annotations"),
                    updated_at=now,
                )
                for t in catalog.get("tools", [])
            ],
            ignore_conflicts=True,
        )
        Resource.objects.bulk_create(
            [
                Resource(
                    server_id=server_id,
                    name=r.get("name") or r["uri"],
                    uri=r["uri"],
                    title=r.get("title") or "",
                    description=r.get("description") or "",
                    mime_type=r.get("mimeType") or "",
                    updated_at=now,
                )
                for r in catalog.get("resources", [])
            ],
            ignore_conflicts=True,
        )
        Prompt.objects.bulk_create(
            [
                Prompt(
                    server_id=server_id,
                    name=p["name"],
                    title=p.get("title") or "",
                    description=p.get("description") or "",
                    arguments=p.get("arguments") or [],
                    updated_at=now,
                )
                for p in catalog.get("prompts", [])
            ],
            ignore_conflicts=True,
        )
