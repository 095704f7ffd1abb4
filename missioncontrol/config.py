"""Typed reading of `mission_control.yml` (MC_CONFIG) and the environment.

The file has the seed's sections (server, websocket, database, log_retention, auth,
mcps); the environment overrides it. Anything malformed raises `ConfigError` with the
setting's dotted name, so start-up stops with a message that says what to fix.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, name: str) -> int:
    """Seconds in `value` ("7 days", "30", 45, "12h"); ConfigError naming `name` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a duration such as '7 days', got {value!r}")
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{name}: expected a duration such as '7 days' or '30s', got {value!r}")
    unit = (match.group(2) or "s")[0]
    return int(match.group(1)) * _UNIT_SECONDS[unit]


def _seconds(value: Any, name: str) -> float:
    """Seconds as a number (0.5) or a duration ("2s"); ConfigError naming `name` otherwise."""
    if isinstance(value, float) and value >= 0:
        return value
    return float(parse_duration(value, name))


def _int(section: dict[str, Any], key: str, default: int, name: str, minimum: int = 0) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}.{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _bool(section: dict[str, Any], key: str, default: bool, name: str) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{name}.{key}: expected true or false, got {value!r}")
    return value


def _str(section: dict[str, Any], key: str, default: str | None, name: str) -> str | None:
    value = section.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name}.{key}: expected a string, got {value!r}")
    return value


def _choice(section: dict[str, Any], key: str, allowed: tuple[str, ...], name: str) -> str:
    """One of `allowed` (the first is the default); anything else is refused at start-up."""
    value = section.get(key, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{name}.{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1


@dataclass(frozen=True)
class WebsocketConfig:
    ping_interval: int = 30
    ping_timeout: int = 10
    max_connections: int = 1000
    # How many matching logs a new logs subscription receives before live ones.
    log_history: int = 100
    # Resumable streams (missioncontrol.history): messages kept per channel, and how long
    # an idle channel's history is kept.
    resume_history: int = 1000
    resume_seconds: int = 3600


@dataclass(frozen=True)
class DatabaseConfig:
    url: str | None = None
    pool_size: int = 20


@dataclass(frozen=True)
class RetentionConfig:
    hot: int = 7 * 86400
    warm: int = 30 * 86400
    cold: int = 365 * 86400


RETENTION_TIERS = ("hot", "warm", "cold")


def parse_retention(value: Any, name: str) -> dict[str, int]:
    """Seconds per tier of a `{hot, warm, cold}` mapping (any subset), each a duration as in
    `log_retention`; ConfigError naming `name.tier` otherwise. A server's own override."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping of hot, warm, cold to durations, got {value!r}")
    unknown = set(value) - set(RETENTION_TIERS)
    if unknown:
        raise ConfigError(f"{name}.{sorted(map(str, unknown))[0]}: unknown key; expected hot, warm, cold")
    ages = {tier: parse_duration(value[tier], f"{name}.{tier}") for tier in RETENTION_TIERS if tier in value}
    for tier, seconds in ages.items():
        if seconds <= 0:
            raise ConfigError(f"{name}.{tier}: expected a duration above zero, got {value[tier]!r}")
    return ages


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str | None = None
    # Always true: every surface but /health requires a credential. The key is accepted
    # for the seed's sake, and `false` is refused (`_require_auth`), not silently ignored.
    require_auth: bool = True


@dataclass(frozen=True)
class RegistryConfig:
    """An MCP Registry API (`GET /v0/servers`) whose servers are registered (source "registry")."""

    url: str | None = None
    include: tuple[str, ...] = ("*",)  # globs over the registry's server names


@dataclass(frozen=True)
class DiscoveryConfig:
    """Servers found on the local network (mcps/mdns.py), registered with source "mdns"."""

    mdns: bool = False  # browse `_mcp._tcp.local.` in the gateway process
    mdns_interfaces: tuple[str, ...] = ()  # addresses to browse on; empty: every interface


@dataclass(frozen=True)
class McpsConfig:
    discovery_interval: int = 30
    health_check_interval: int = 60
    reconnect_backoff: str = "exponential"
    servers: dict[str, Any] = field(default_factory=dict)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    # Seconds between two reads of the servers' log files (logs/tailing.py); 0: not tailed.
    log_poll_interval: float = 0.5


@dataclass(frozen=True)
class IngestConfig:
    max_body_bytes: int = 5 * 1024 * 1024
    max_events: int = 5000


@dataclass(frozen=True)
class AutomationsConfig:
    """Runaway guards of the directive engine (see automations/engine.py)."""

    max_steps: int = 1000  # steps one run may execute, nested and repeated ones included
    max_foreach_items: int = 500
    step_timeout: int = 300  # seconds
    run_timeout: int = 3600
    max_concurrent: int = 4  # running executions per directive
    max_depth: int = 3  # runs started by the events or alerts of runs, in a chain


@dataclass(frozen=True)
class RedactionConfig:
    """Secrets masked before anything ingested is stored (missioncontrol/redaction.py)."""

    enabled: bool = True
    replacement: str = "***"
    # Extra regular expressions; a pattern's first group, if it has one, is kept.
    patterns: tuple[str, ...] = ()
    # Extra JSON key names (case-insensitive) whose string values are masked whole.
    keys: tuple[str, ...] = ()
    # Personal data masked too, off unless listed: any of PII_KINDS.
    pii: tuple[str, ...] = ()


# Personal data redaction can mask: e-mail addresses, payment card numbers (those that
# pass the Luhn check) and US social security numbers.
PII_KINDS = ("email", "card", "us_ssn")


def parse_pii(value: Any, name: str) -> tuple[str, ...]:
    """`redaction.pii`: true or "all" (every kind), false or "off" (none), or a list of kinds."""
    if value in (None, False, "off", "false", "0", ""):
        return ()
    if value in (True, "all", "true", "1"):
        return PII_KINDS
    kinds = [k.strip() for k in value.split(",")] if isinstance(value, str) else value
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"{name}: expected true, false or a list of {', '.join(PII_KINDS)}")
    unknown = sorted(set(kinds) - set(PII_KINDS))
    if unknown:
        raise ConfigError(f"{name}: unknown kind {unknown[0]!r}; expected any of {', '.join(PII_KINDS)}")
    return tuple(k for k in PII_KINDS if k in kinds)


@dataclass(frozen=True)
class Rate:
    """At most `count` per `seconds` (a fixed window); count 0 means no limit."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds} s"


@dataclass(frozen=True)
class RateLimitsConfig:
    """Limits answered with 429 + Retry-After (missioncontrol/ratelimit.py)."""

    ingest: Rate = Rate(3000, 60)  # requests per ingest key
    api: Rate = Rate(1200, 60)  # REST + GraphQL requests per user, or per address if anonymous
    websocket_frames: Rate = Rate(200, 10)  # client frames per connection
    websocket_connections: int = 100  # open sockets per user (or address); 0: no cap
    mcp: Rate = Rate(1200, 60)  # /mcp requests per bearer credential (API token or JWT)
    otlp: Rate = Rate(3000, 60)  # OTLP/HTTP exports (/v1/traces, /v1/logs) per ingest key
    login: Rate = Rate(10, 60)  # sign-in attempts per username (pages, admin, /api/auth/token/)
    login_address: Rate = Rate(30, 60)  # sign-in attempts per client address


@dataclass(frozen=True)
class SecurityConfig:
    # Origins a browser may open /ws/ from ("https://mc.example.com"); empty: the
    # ALLOWED_HOSTS (any host when that is "*").
    allowed_origins: tuple[str, ...] = ()
    # Fernet keys for secrets at rest (missioncontrol/encryption.py); the first encrypts.
    fernet_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationConfig:
    """Thresholds of escalation detection (audit/escalation.py)."""

    denials: int = 3  # a grant after this many denials of the same resource...
    window: int = 600  # ...for the same subject within this many seconds
    learning_period: int = 7 * 86400  # a subject's history before "never used" alerts start


@dataclass(frozen=True)
class PolicyConfig:
    default: str = "allow"  # when no rule matches a routed call: allow or deny
    escalation: EscalationConfig = field(default_factory=EscalationConfig)


@dataclass(frozen=True)
class KiwiWorkspaceConfig:
    """A Kiwi project whose `.ai/` folder is indexed (kiwi/models.py)."""

    name: str
    project_path: str
    server: str = ""  # the Kiwi MCP server (its id) whose `execute` runs in this project


@dataclass(frozen=True)
class KiwiConfig:
    """Kiwi MCP workspaces: projects' `.ai/` folders and the user space, indexed into the graph."""

    # The user space: `$USER_SPACE`, else ~/.ai; indexed when it exists. None: not at all.
    user_space: str | None = field(
        default_factory=lambda: os.environ.get("USER_SPACE") or str(Path.home() / ".ai")
    )
    workspaces: tuple[KiwiWorkspaceConfig, ...] = ()
    index_interval: int = 60  # seconds between re-index passes (only changed files are read)


@dataclass(frozen=True)
class OtlpExportConfig:
    """Threads and their steps forwarded as spans to an OpenTelemetry collector (threads/otlp_export.py)."""

    endpoint: str | None = None  # the collector's OTLP/HTTP base URL; spans go to {endpoint}/v1/traces
    headers: dict[str, str] = field(default_factory=dict)  # sent with every export (an API key, say)
    interval: int = 10  # seconds between two exports
    delay: int = 30  # a thread is exported this long after it ended (its late steps and end arrive)


@dataclass(frozen=True)
class ExportConfig:
    otlp: OtlpExportConfig = field(default_factory=OtlpExportConfig)


@dataclass(frozen=True)
class ModelPrice:
    """What a model's tokens cost, per million, in the usage section's currency."""

    input: float
    output: float


@dataclass(frozen=True)
class UsageConfig:
    """LLM token prices (usage/pricing.py); a model with no price has no cost, never 0."""

    currency: str = "USD"  # the unit the prices are in, shown next to every cost
    # Model name (or a name ending in `*`: every model starting with the rest): price.
    prices: dict[str, ModelPrice] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    websocket: WebsocketConfig = field(default_factory=WebsocketConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    log_retention: RetentionConfig = field(default_factory=RetentionConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    mcps: McpsConfig = field(default_factory=McpsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    demo: bool = True  # seed_demo and the demo agent on first run (`demo: false` switches them off)
    automations: AutomationsConfig = field(default_factory=AutomationsConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    kiwi: KiwiConfig = field(default_factory=KiwiConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    usage: UsageConfig = field(default_factory=UsageConfig)
    path: Path | None = None


_SECTIONS = {
    "server",
    "websocket",
    "database",
    "log_retention",
    "auth",
    "mcps",
    "ingest",
    "demo",
    "automations",
    "redaction",
    "rate_limits",
    "security",
    "policy",
    "kiwi",
    "export",
    "usage",
}


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(value).__name__}")
    return value


def _expand_env(value: str) -> str:
    """`${VAR}` in a string setting is replaced by the environment's VAR (seed style)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    """Build a `Config` from the parsed YAML mapping, validating every known key."""
    unknown = set(raw) - _SECTIONS
    if unknown:
        raise ConfigError(
            f"unknown section(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(_SECTIONS))}"
        )
    s, w, d = _section(raw, "server"), _section(raw, "websocket"), _section(raw, "database")
    r, a, m = _section(raw, "log_retention"), _section(raw, "auth"), _section(raw, "mcps")
    i = _section(raw, "ingest")
    am = _section(raw, "automations")
    db_url = _str(d, "url", None, "database")
    demo = raw.get("demo", True)
    if not isinstance(demo, bool):
        raise ConfigError(f"demo: expected true or false, got {demo!r}")
    jwt = _str(a, "jwt_secret", None, "auth")
    servers = m.get("servers", {}) or {}
    if not isinstance(servers, dict):
        raise ConfigError("mcps.servers: expected a mapping of server name to its settings")
    for server_name, entry in servers.items():
        if isinstance(entry, dict) and entry.get("log_retention") is not None:
            parse_retention(entry["log_retention"], f"mcps.servers.{server_name}.log_retention")
    return Config(
        server=ServerConfig(
            host=_str(s, "host", "127.0.0.1", "server") or "127.0.0.1",
            port=_int(s, "port", 8000, "server", 1),
            workers=_int(s, "workers", 1, "server", 1),
        ),
        websocket=WebsocketConfig(
            ping_interval=_int(w, "ping_interval", 30, "websocket", 1),
            ping_timeout=_int(w, "ping_timeout", 10, "websocket", 1),
            max_connections=_int(w, "max_connections", 1000, "websocket", 1),
            log_history=_int(w, "log_history", 100, "websocket", 0),
            resume_history=_int(w, "resume_history", 1000, "websocket", 0),
            resume_seconds=_int(w, "resume_seconds", 3600, "websocket", 1),
        ),
        database=DatabaseConfig(
            url=_expand_env(db_url) if db_url else None,
            pool_size=_int(d, "pool_size", 20, "database", 1),
        ),
        log_retention=RetentionConfig(
            hot=parse_duration(r.get("hot", "7 days"), "log_retention.hot"),
            warm=parse_duration(r.get("warm", "30 days"), "log_retention.warm"),
            cold=parse_duration(r.get("cold", "365 days"), "log_retention.cold"),
        ),
        auth=AuthConfig(
            jwt_secret=_expand_env(jwt) if jwt else None,
            require_auth=_require_auth(a),
        ),
        mcps=McpsConfig(
            discovery_interval=parse_duration(m.get("discovery_interval", 30), "mcps.discovery_interval"),
            health_check_interval=parse_duration(
                m.get("health_check_interval", 60), "mcps.health_check_interval"
            ),
            reconnect_backoff=_choice(m, "reconnect_backoff", ("exponential", "linear"), "mcps"),
            servers=servers,
            registry=_registry(m.get("registry")),
            discovery=_discovery(m.get("discovery")),
            log_poll_interval=_seconds(m.get("log_poll_interval", 0.5), "mcps.log_poll_interval"),
        ),
        ingest=IngestConfig(
            max_body_bytes=_int(i, "max_body_bytes", 5 * 1024 * 1024, "ingest", 1024),
            max_events=_int(i, "max_events", 5000, "ingest", 1),
        ),
        demo=demo,
        automations=_automations(am),
        redaction=_redaction(_section(raw, "redaction")),
        rate_limits=_rate_limits(_section(raw, "rate_limits")),
        security=_security(_section(raw, "security")),
        policy=_policy(_section(raw, "policy")),
        kiwi=_kiwi(_section(raw, "kiwi")),
        export=_export(_section(raw, "export")),
        usage=_usage(_section(raw, "usage")),
        path=path,
    )


def _require_auth(auth: dict[str, Any]) -> bool:
    """auth.require_auth: true (the default) or absent; false is refused, never ignored."""
    if not _bool(auth, "require_auth", True, "auth"):
        raise ConfigError(
            "auth.require_auth: false is not supported: every surface but /health requires "
            "authentication (remove the key or set it to true)"
        )
    return True


def _automations(raw: dict[str, Any]) -> AutomationsConfig:
    unknown = set(raw) - set(AutomationsConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"automations.{sorted(unknown)[0]}: unknown key")
    d = AutomationsConfig()
    return AutomationsConfig(
        max_steps=_int(raw, "max_steps", d.max_steps, "automations", 1),
        max_foreach_items=_int(raw, "max_foreach_items", d.max_foreach_items, "automations", 1),
        step_timeout=parse_duration(raw.get("step_timeout", d.step_timeout), "automations.step_timeout"),
        run_timeout=parse_duration(raw.get("run_timeout", d.run_timeout), "automations.run_timeout"),
        max_concurrent=_int(raw, "max_concurrent", d.max_concurrent, "automations", 1),
        max_depth=_int(raw, "max_depth", d.max_depth, "automations", 0),
    )


def _policy(p: dict[str, Any]) -> PolicyConfig:
    unknown = set(p) - {"default", "escalation"}
    if unknown:
        raise ConfigError(f"policy.{sorted(unknown)[0]}: unknown key; expected default, escalation")
    default = p.get("default", "allow")
    if default not in ("allow", "deny"):
        raise ConfigError(f"policy.default: expected allow or deny, got {default!r}")
    e = p.get("escalation") or {}
    if not isinstance(e, dict):
        raise ConfigError(f"policy.escalation: expected a mapping, got {type(e).__name__}")
    unknown = set(e) - {"denials", "window", "learning_period"}
    if unknown:
        raise ConfigError(
            f"policy.escalation.{sorted(unknown)[0]}: unknown key; expected denials, window, learning_period"
        )
    return PolicyConfig(
        default=default,
        escalation=EscalationConfig(
            denials=_int(e, "denials", 3, "policy.escalation", 1),
            window=parse_duration(e.get("window", "10m"), "policy.escalation.window"),
            learning_period=parse_duration(
                e.get("learning_period", "7 days"), "policy.escalation.learning_period"
            ),
        ),
    )


def _export(raw: dict[str, Any]) -> ExportConfig:
    unknown = set(raw) - {"otlp"}
    if unknown:
        raise ConfigError(f"export.{sorted(unknown)[0]}: unknown key; expected otlp")
    otlp = raw.get("otlp") or {}
    if not isinstance(otlp, dict):
        raise ConfigError("export.otlp: expected a mapping, e.g. {endpoint: http://collector:4318}")
    unknown = set(otlp) - {"endpoint", "headers", "interval", "delay"}
    if unknown:
        raise ConfigError(
            f"export.otlp.{sorted(unknown)[0]}: unknown key; expected endpoint, headers, interval, delay"
        )
    endpoint = _str(otlp, "endpoint", None, "export.otlp")
    if endpoint:
        endpoint = _expand_env(endpoint)
        if not re.match(r"^https?://[^/\s]+", endpoint):
            raise ConfigError(f"export.otlp.endpoint: expected an http(s) URL, got {endpoint!r}")
    headers = otlp.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError("export.otlp.headers: expected a mapping of header name to text")
    default = OtlpExportConfig()
    interval = parse_duration(otlp.get("interval", default.interval), "export.otlp.interval")
    if interval < 1:
        raise ConfigError(f"export.otlp.interval: expected at least 1 second, got {interval}")
    return ExportConfig(
        otlp=OtlpExportConfig(
            endpoint=endpoint or None,
            headers={k: _expand_env(v) for k, v in headers.items()},
            interval=interval,
            delay=parse_duration(otlp.get("delay", default.delay), "export.otlp.delay"),
        )
    )


def _kiwi(raw: dict[str, Any]) -> KiwiConfig:
    unknown = set(raw) - {"user_space", "workspaces", "index_interval"}
    if unknown:
        raise ConfigError(
            f"kiwi.{sorted(unknown)[0]}: unknown key; expected user_space, workspaces, index_interval"
        )
    default = KiwiConfig()
    user_space = raw.get("user_space", default.user_space)
    if user_space is False:
        user_space = None
    elif user_space is not None and not isinstance(user_space, str):
        raise ConfigError(f"kiwi.user_space: expected a folder path or false, got {user_space!r}")
    entries = raw.get("workspaces") or []
    if not isinstance(entries, list):
        raise ConfigError("kiwi.workspaces: expected a list of {name, project_path, server}")
    workspaces: list[KiwiWorkspaceConfig] = []
    for n, entry in enumerate(entries):
        where = f"kiwi.workspaces[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with name, project_path and server")
        unknown = set(entry) - {"name", "project_path", "server"}
        if unknown:
            raise ConfigError(
                f"{where}.{sorted(unknown)[0]}: unknown key; expected name, project_path, server"
            )
        project = entry.get("project_path")
        if not isinstance(project, str) or not project:
            raise ConfigError(f"{where}.project_path: required, the folder holding the project's .ai/")
        name = entry.get("name") or Path(project).name
        if not isinstance(name, str) or not re.fullmatch(r"[-\w]+", name) or name == "user":
            raise ConfigError(f"{where}.name: expected a slug other than 'user', got {name!r}")
        server = entry.get("server") or ""
        if not isinstance(server, str):
            raise ConfigError(f"{where}.server: expected an MCP server id, got {server!r}")
        workspaces.append(KiwiWorkspaceConfig(name, str(Path(_expand_env(project)).expanduser()), server))
    return KiwiConfig(
        user_space=str(Path(_expand_env(user_space)).expanduser()) if user_space else None,
        workspaces=tuple(workspaces),
        index_interval=parse_duration(
            raw.get("index_interval", default.index_interval), "kiwi.index_interval"
        ),
    )


def _price(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name}: expected a price per million tokens (a number >= 0), got {value!r}")
    return float(value)


def _usage(raw: dict[str, Any]) -> UsageConfig:
    unknown = set(raw) - {"currency", "prices"}
    if unknown:
        raise ConfigError(f"usage.{sorted(unknown)[0]}: unknown key; expected currency, prices")
    currency = _str(raw, "currency", "USD", "usage") or "USD"
    entries = raw.get("prices") or {}
    if not isinstance(entries, dict):
        raise ConfigError(
            "usage.prices: expected a mapping of model name to {input, output} per million tokens"
        )
    prices: dict[str, ModelPrice] = {}
    for model, entry in entries.items():
        where = f"usage.prices.{model}"
        if not isinstance(model, str) or not model.strip() or model.strip() == "*":
            raise ConfigError(f"usage.prices: expected model names, got {model!r}")
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise ConfigError(
                f"{where}: expected {{input: <price>, output: <price>}} per million tokens, got {entry!r}"
            )
        prices[model.strip()] = ModelPrice(
            input=_price(entry["input"], f"{where}.input"), output=_price(entry["output"], f"{where}.output")
        )
    return UsageConfig(currency=currency, prices=prices)


def _registry(raw: Any) -> RegistryConfig:
    if raw is None:
        return RegistryConfig()
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, dict):
        raise ConfigError("mcps.registry: expected a URL or a mapping with 'url' and 'include'")
    unknown = set(raw) - {"url", "include"}
    if unknown:
        raise ConfigError(f"mcps.registry.{sorted(unknown)[0]}: unknown key; expected url, include")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"mcps.registry.url: expected an http(s) URL, got {url!r}")
    include = raw.get("include", ["*"])
    if isinstance(include, str):
        include = [include]
    if not isinstance(include, list) or not all(isinstance(g, str) and g for g in include):
        raise ConfigError("mcps.registry.include: expected a list of name patterns, e.g. ['io.github.me/*']")
    return RegistryConfig(url=_expand_env(url), include=tuple(include))


def _discovery(raw: Any) -> DiscoveryConfig:
    if raw is None:
        return DiscoveryConfig()
    if not isinstance(raw, dict):
        raise ConfigError("mcps.discovery: expected a mapping, e.g. {mdns: true}")
    unknown = set(raw) - {"mdns", "mdns_interfaces"}
    if unknown:
        raise ConfigError(f"mcps.discovery.{sorted(unknown)[0]}: unknown key; expected mdns, mdns_interfaces")
    mdns = raw.get("mdns", False)
    if not isinstance(mdns, bool):
        raise ConfigError(f"mcps.discovery.mdns: expected true or false, got {mdns!r}")
    interfaces = raw.get("mdns_interfaces") or []
    if isinstance(interfaces, str):
        interfaces = [interfaces]
    if not isinstance(interfaces, list):
        raise ConfigError(
            "mcps.discovery.mdns_interfaces: expected a list of IP addresses, e.g. ['192.168.1.10']"
        )
    for address in interfaces:
        try:
            ipaddress.ip_address(str(address))
        except ValueError:
            raise ConfigError(
                f"mcps.discovery.mdns_interfaces: {address!r} is not an IP address of this host's interfaces"
            ) from None
    return DiscoveryConfig(mdns=mdns, mdns_interfaces=tuple(str(a) for a in interfaces))


def _strings(section: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{name}.{key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _security(raw: dict[str, Any]) -> SecurityConfig:
    unknown = set(raw) - {"allowed_origins", "fernet_keys"}
    if unknown:
        raise ConfigError(
            f"security.{sorted(unknown)[0]}: unknown key; expected allowed_origins, fernet_keys"
        )
    return SecurityConfig(
        allowed_origins=_strings(raw, "allowed_origins", "security"),
        fernet_keys=tuple(_expand_env(k) for k in _strings(raw, "fernet_keys", "security")),
    )


def _redaction(raw: dict[str, Any]) -> RedactionConfig:
    unknown = set(raw) - {"enabled", "replacement", "patterns", "keys", "pii"}
    if unknown:
        raise ConfigError(
            f"redaction.{sorted(unknown)[0]}: unknown key; expected enabled, replacement, patterns, keys, pii"
        )
    patterns = _strings(raw, "patterns", "redaction")
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"redaction.patterns[{index}]: not a regular expression: {exc}") from exc
        if pattern.startswith("(?") and re.match(r"\(\?[aiLmsux]+\)", pattern):
            raise ConfigError(
                f"redaction.patterns[{index}]: global flags cannot be combined; scope them, e.g. (?i:...)"
            )
    return RedactionConfig(
        enabled=_bool(raw, "enabled", True, "redaction"),
        replacement=_str(raw, "replacement", "***", "redaction") or "***",
        patterns=patterns,
        keys=_strings(raw, "keys", "redaction"),
        pii=parse_pii(raw.get("pii"), "redaction.pii"),
    )


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)?\s*$")


def parse_rate(value: Any, name: str) -> Rate:
    """A rate such as "600/min", "100/10s" or "5000/h"; 0, off or null for no limit."""
    if isinstance(value, Rate):
        return value
    if value in (None, 0, False, "off", "0"):
        return Rate(0, 1)
    match = _RATE.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"{name}: expected a rate such as '600/min' or '100/10s' (or off), got {value!r}")
    count, number, unit = int(match.group(1)), int(match.group(2) or 1), (match.group(3) or "s")[0]
    seconds = number * _UNIT_SECONDS[unit]
    if seconds < 1:
        raise ConfigError(f"{name}: the period must be at least one second, got {value!r}")
    return Rate(count, seconds)


def _rate_limits(raw: dict[str, Any]) -> RateLimitsConfig:
    known = {
        "ingest",
        "api",
        "websocket_frames",
        "websocket_connections",
        "mcp",
        "otlp",
        "login",
        "login_address",
    }
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(
            f"rate_limits.{sorted(unknown)[0]}: unknown key; expected {', '.join(sorted(known))}"
        )
    default = RateLimitsConfig()
    return RateLimitsConfig(
        ingest=parse_rate(raw.get("ingest", "3000/min"), "rate_limits.ingest"),
        api=parse_rate(raw.get("api", "1200/min"), "rate_limits.api"),
        websocket_frames=parse_rate(raw.get("websocket_frames", "200/10s"), "rate_limits.websocket_frames"),
        websocket_connections=_int(
            raw, "websocket_connections", default.websocket_connections, "rate_limits", 0
        ),
        mcp=parse_rate(raw.get("mcp", "1200/min"), "rate_limits.mcp"),
        otlp=parse_rate(raw.get("otlp", "3000/min"), "rate_limits.otlp"),
        login=parse_rate(raw.get("login", "10/min"), "rate_limits.login"),
        login_address=parse_rate(raw.get("login_address", "30/min"), "rate_limits.login_address"),
    )


def load_config(path: str | None) -> Config:
    """Read MC_CONFIG's file, or the defaults when no path is given."""
    if not path:
        return Config()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"MC_CONFIG: no file at {path}")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"MC_CONFIG: {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"MC_CONFIG: {path} must hold a mapping of sections")
    return parse_config(raw, file)
