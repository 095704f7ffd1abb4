"""Mission Control settings: one module, configured by the environment and MC_CONFIG.

With neither DATABASE_URL nor REDIS_URL set this is the embedded default: a SQLite
file (WAL), the in-memory channel layer and in-process scheduling, so `make run`
works with nothing else installed. Bad configuration stops start-up with a message
naming the setting.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from missioncontrol.config import (
    ConfigError,
    RateLimitsConfig,
    RedactionConfig,
    load_config,
    parse_pii,
    parse_rate,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}: expected true or false, got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None


MC_CONFIG_PATH = env_str("MC_CONFIG")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None


try:
    MC = load_config(MC_CONFIG_PATH)
except ConfigError as exc:
    raise ImproperlyConfigured(f"Mission Control configuration: {exc}") from exc

DATA_DIR = Path(env_str("MC_DATA_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
DATABASE_URL = env_str("DATABASE_URL", MC.database.url)
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = DATABASE_URL is None and REDIS_URL is None

# MC_ENV=production: behind TLS, with the settings `manage.py check --deploy` asks for
# (see the end of this module); DEBUG off and a strong SECRET_KEY are then required.
MC_ENV = env_str("MC_ENV", "development")
if MC_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"MC_ENV: expected development or production, got {MC_ENV!r}")
PRODUCTION = MC_ENV == "production"
# Off unless asked for: Django's debug pages list every URL pattern to anyone and show
# a traceback with its local variables. templates/404.html and 500.html answer instead.
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION or not EMBEDDED:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set with DATABASE_URL, REDIS_URL or MC_ENV=production "
            "(only the embedded default generates its own)"
        )
    # Embedded default: generate once and keep it on disk so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = _secret_key()


def _allowed_hosts() -> list[str]:
    hosts = [h.strip() for h in (env_str("ALLOWED_HOSTS") or "").split(",") if h.strip()]
    if PRODUCTION and (not hosts or "*" in hosts):
        # Django builds absolute URLs (pagination links, redirects) from the Host header.
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must be set when MC_ENV=production: the host names this server answers "
            "to, comma-separated, e.g. ALLOWED_HOSTS=mc.example.com (not *)"
        )
    return hosts or ["*"]


ALLOWED_HOSTS = _allowed_hosts()
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in (env_str("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "missioncontrol",
    "mcps",
    "threads",
    "logs",
    "audit",
    "automations",
    "kiwi",
    "notifications",
    "usage",
]

MIDDLEWARE = [
    "missioncontrol.metrics.query_latency_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages need a signed-in user (redirect to LOGIN_URL); the API answers 401 itself.
    "missioncontrol.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "missioncontrol.ratelimit.RateLimitMiddleware",
    "missioncontrol.logins.RefusedLoginStatus",
    "missioncontrol.errors.ContentSecurityPolicy",
]

ROOT_URLCONF = "missioncontrol.urls"
ASGI_APPLICATION = "missioncontrol.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "missioncontrol.pages.shell",
                "missioncontrol.errors.csp_nonce",
            ],
        },
    },
]


def _databases() -> dict[str, dict[str, object]]:
    if DATABASE_URL is None:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": DATA_DIR / "missioncontrol.sqlite3",
                # WAL lets readers run during writes; synchronous=FULL keeps a commit
                # durable before ingest answers; IMMEDIATE avoids lock-upgrade deadlocks.
                "OPTIONS": {
                    "transaction_mode": "IMMEDIATE",
                    "timeout": 20,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                },
                # Tests use a file too, not Django's shared-cache in-memory default:
                # that one refuses concurrent writers at once ("table is locked")
                # instead of waiting, unlike the file `make run` serves from.
                "TEST": {"NAME": str(DATA_DIR / "test_missioncontrol.sqlite3")},
            }
        }
    try:
        db = dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("MC_CONN_MAX_AGE", 600), conn_health_checks=True
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from exc
    if not db.get("ENGINE"):
        raise ImproperlyConfigured(f"DATABASE_URL: unsupported scheme in {DATABASE_URL!r}")
    if db["ENGINE"] == "django.db.backends.postgresql":
        # An unreachable host fails in seconds, so ingest spools instead of hanging.
        db.setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("MC_DB_CONNECT_TIMEOUT", 5))
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Everything this installation keeps in Redis (channel layer groups and channels, the
# gateway's request channel, cache keys, rate limits) is named under this prefix, so two
# installations (or test runs) can share one Redis.
CHANNEL_PREFIX = env_str("MC_CHANNEL_PREFIX", "mc") or "mc"


def _channel_layers() -> dict[str, dict[str, object]]:
    if REDIS_URL is None:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL: expected redis://host:port/db, got {REDIS_URL!r}")
    # Pub/sub: a group_send is one PUBLISH, fanned out to local sockets by each web
    # process, rather than one Redis list push per subscriber. Live frames are
    # at-most-once; what was stored is always readable again from the database.
    return {
        "default": {
            "BACKEND": "missioncontrol.layers.PubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_PREFIX},
        }
    }


CHANNEL_LAYERS = _channel_layers()

# "shared": small values every process must agree on (the policy rules' version stamp,
# audit/policy.py). Redis with REDIS_URL; otherwise a file cache in MC_DATA_DIR, since
# mcp_proxy is a process of its own even on the embedded default.
CACHES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNEL_PREFIX,
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    ),
}

# Celery: Redis as broker when configured; otherwise tasks run eagerly in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# At-least-once execution (every task is idempotent, see missioncontrol/taskruns.py):
# a message is acknowledged after its task ends, so a worker killed mid-task leaves it
# to be run again; a killed pool child is requeued at once (reject_on_worker_lost).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a dead worker holds at most one message per process
# No run may last longer than the hard limit; the soft one lets a task stop cleanly.
CELERY_TASK_TIME_LIMIT = env_int("MC_CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - max(1, CELERY_TASK_TIME_LIMIT // 10)
# Redis redelivers an unacknowledged message after the visibility timeout. It must exceed
# the hard time limit (and any countdown), or a task still running would be started a
# second time by another worker; beyond that, shorter is better: it is how long a
# message whose worker was killed outright waits before it runs again.
# A directive run's task may last its run timeout (automations.run_timeout) and a grace.
DIRECTIVE_TASK_TIME_LIMIT = int(MC.automations.run_timeout) + 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "MC_CELERY_VISIBILITY_TIMEOUT", max(CELERY_TASK_TIME_LIMIT, DIRECTIVE_TASK_TIME_LIMIT) + 300
    )
}
# Periodic tasks: run by `celery beat` with Redis, by the web process itself without
# (missioncontrol/scheduler.py), on the same Celery schedules (seconds, or crontab in UTC).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "mcps.check-health": {"task": "mcps.check_health", "schedule": float(MC.mcps.health_check_interval)},
    # Spools left by any process on this data volume (each web process drains its own too).
    "missioncontrol.sweep-task-runs": {
        "task": "missioncontrol.sweep_task_runs",
        "schedule": 300.0,
        "options": {"expires": 280},
    },
    # Daily at 03:30 UTC: days past log_retention.hot to the archive, warm to cold, cold
    # past its age gone. On the clock, not every 24 h from start: a process restarted more
    # often than daily would otherwise never archive.
    "logs.archive": {
        "task": "logs.archive",
        "schedule": crontab(minute=30, hour=3),
        "options": {"expires": 86000},
    },
    # PostgreSQL, hourly at :05: the log table's day partitions, made ahead (logs/partitions.py).
    "logs.partitions": {
        "task": "logs.partitions",
        "schedule": crontab(minute=5),
        "options": {"expires": 3500},
    },
    "missioncontrol.drain-spool": {
        "task": "missioncontrol.drain_spool",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Scheduled automations, read from the database at the start of every minute, so a
    # cron automation starts on its minute (automations/tasks.py).
    "automations.tick": {"task": "automations.tick", "schedule": crontab(), "options": {"expires": 55}},
    # Alerts whose condition cleared with no event saying so; deliveries lost to a restart.
    "notifications.sweep": {"task": "notifications.sweep", "schedule": 60.0, "options": {"expires": 55}},
    # Kiwi workspaces re-indexed: changed files only (kiwi/models.py).
    "kiwi.index": {
        "task": "kiwi.index",
        "schedule": float(MC.kiwi.index_interval),
        "options": {"expires": max(1, MC.kiwi.index_interval - 5)},
    },
}
# Threads and steps as spans to an external OpenTelemetry collector (threads/otlp_export.py):
# off unless an endpoint is configured.
OTLP_EXPORT = MC.export.otlp
OTLP_EXPORT_ENDPOINT = env_str("MC_OTLP_EXPORT_ENDPOINT", OTLP_EXPORT.endpoint)
if OTLP_EXPORT_ENDPOINT:
    CELERY_BEAT_SCHEDULE["threads.export-spans"] = {
        "task": "threads.export_spans",
        "schedule": float(OTLP_EXPORT.interval),
        "options": {"expires": max(1, OTLP_EXPORT.interval - 1)},
    }
SCHEDULE_IN_PROCESS = env_bool("MC_SCHEDULE_IN_PROCESS", REDIS_URL is None)
if REDIS_URL:
    # `celery beat` keeps its schedule in Redis (celery-redbeat), not in a file of its
    # container: each entry's last run survives a restart of beat, and beat holds a lock
    # in Redis while it runs, so a second beat (a redeploy's overlap, a mistake in
    # scaling) waits instead of sending every job twice. A dead beat's lock expires after
    # 5 x CELERY_BEAT_MAX_LOOP_INTERVAL, then a waiting beat takes over.
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
    CELERY_REDBEAT_REDIS_URL = REDIS_URL
    CELERY_REDBEAT_KEY_PREFIX = f"{CHANNEL_PREFIX}:redbeat:"
    CELERY_BEAT_MAX_LOOP_INTERVAL = 5

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Pages: every page needs a signed-in user; the theme is a user preference.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Log retention tiers (logs/archive.py): hot in the database, then warm and cold files in
# the archive storage: the data directory, or an S3-compatible bucket (django-storages and
# boto3) when MC_ARCHIVE_S3_BUCKET is set.
LOG_RETENTION = MC.log_retention


def _archive_storage() -> dict[str, object]:
    bucket = env_str("MC_ARCHIVE_S3_BUCKET")
    if bucket:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": env_str("MC_ARCHIVE_S3_ENDPOINT"),
                "location": env_str("MC_ARCHIVE_S3_PREFIX", "mission-control/logs"),
                "file_overwrite": True,
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "archive")},
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "archive": _archive_storage(),
}

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["missioncontrol.renderers.FastJSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["missioncontrol.api.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "missioncontrol.api.throttling.exception_handler",
    # Authentication (see missioncontrol/authentication.py): an API token or a JWT as
    # `Authorization: Bearer`, or the session. The first class makes a missing one 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "missioncontrol.authentication.APITokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["missioncontrol.permissions.RolePermission"],
}

# Authentication: sessions for pages (LOGIN_URL above), JWT (POST /api/auth/token/) and
# API tokens for clients.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("MC_JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("MC_JWT_REFRESH_DAYS", 1)),
    "SIGNING_KEY": env_str("JWT_SECRET", MC.auth.jwt_secret) or SECRET_KEY,
    "ALGORITHM": "HS256",
    "UPDATE_LAST_LOGIN": False,
}

# OpenAPI 3.1 at /api/schema/, browsable at /api/schema/docs/ (missioncontrol/openapi.py).
# Swagger UI (and Redoc, should it be served) load from our own static files (the sidecar),
# no CDN. Redoc is not served: its bundle always fetches a logo from Redocly's CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Mission Control API",
    "DESCRIPTION": (
        "Threads, logs, permission checks and MCP servers of the agents Mission Control watches. "
        "Lists filter by comma-separated values (`levels=WARN,ERROR`) and time "
        "(`from`/`to` ISO 8601, `since=24h`), page by `cursor` and `limit`, and answer 400 "
        "`{parameter: [reasons]}` for a parameter they do not know. Agents push events to "
        "`POST /api/ingest/events` with `Authorization: Bearer <ingest key>`."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs, like the rest of the API, are for signed-in users.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Request bodies are documented as JSON, what clients send; form bodies are still
    # parsed, but a malformed multipart one is refused by daphne itself (an empty 400).
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name ("status", "kind") get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "ThreadStatusEnum": "threads.models.Thread.Status",
        "StepStatusEnum": "threads.models.ExecutionStep.Status",
        "ServerStatusEnum": "mcps.models.MCPServer.Status",
        "TransportEnum": "mcps.models.MCPServer.Transport",
        "RegistrationTransportEnum": "mcps.api.serializers.REGISTRATION_TRANSPORTS",
        "EntityKindEnum": "missioncontrol.graph.ENTITY_KINDS",
        "EdgeKindEnum": "missioncontrol.graph.EDGE_KINDS",
        "SearchKindEnum": "missioncontrol.search.KINDS",
        "ExecutionStatusEnum": "automations.models.DirectiveExecution.Status",
        "ExecutionTriggerEnum": "automations.models.DirectiveExecution.Trigger",
        "AutomationTriggerEnum": "automations.models.Automation.Trigger",
        "KiwiItemKindEnum": "kiwi.models.KiwiItem.Kind",
        "KiwiWorkspaceSourceEnum": "kiwi.models.KiwiWorkspace.Source",
        "ServerSourceEnum": "mcps.models.MCPServer.Source",
        "AlertKindEnum": "notifications.models.KIND_CHOICES",
        "AlertSeverityEnum": "notifications.models.Severity",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "missioncontrol.openapi.add_components",
        "missioncontrol.openapi.add_plain_endpoints",
        "missioncontrol.openapi.any_or_null",
    ],
}

# Ingest limits (answered with 413 past them).
INGEST_MAX_BODY_BYTES = env_int("MC_INGEST_MAX_BODY_BYTES", MC.ingest.max_body_bytes)
INGEST_MAX_EVENTS = env_int("MC_INGEST_MAX_EVENTS", MC.ingest.max_events)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

# Durable ingest (missioncontrol/ingest/spool.py): batches kept on disk while the
# database is unreachable, answered 202, replayed by the drainer; 503 past the bound.
SPOOL_DIR = Path(env_str("MC_SPOOL_DIR", str(DATA_DIR / "spool")) or DATA_DIR / "spool")
SPOOL_MAX_BYTES = env_int("MC_SPOOL_MAX_BYTES", 256 * 1024 * 1024)
SPOOL_DRAIN_INTERVAL = env_float("MC_SPOOL_DRAIN_INTERVAL", 2.0)
SPOOL_DRAIN_IN_PROCESS = env_bool("MC_SPOOL_DRAIN_IN_PROCESS", True)
# How long a key authenticated by this process may still spool while the database is down.
INGEST_KEY_MEMORY_SECONDS = env_int("MC_INGEST_KEY_MEMORY_SECONDS", 3600)

WS_LOG_HISTORY = MC.websocket.log_history
# Resumable live streams (missioncontrol/history.py): per-channel history for reconnects.
WS_RESUME_HISTORY = env_int("MC_WS_RESUME_HISTORY", MC.websocket.resume_history)
WS_RESUME_SECONDS = MC.websocket.resume_seconds
# Per web process: a socket past the cap is closed with 4013 (try again later).
WS_MAX_CONNECTIONS = env_int("MC_WS_MAX_CONNECTIONS", MC.websocket.max_connections)
WS_PING_INTERVAL = MC.websocket.ping_interval
WS_PING_TIMEOUT = MC.websocket.ping_timeout

# The MCP gateway: a process of its own (`manage.py run_gateway`) when there is a Redis
# channel layer to reach it through; inside the web process on the embedded default.
GATEWAY_EMBEDDED = env_bool("MC_GATEWAY_EMBEDDED", REDIS_URL is None)
GATEWAY_CALL_TIMEOUT = env_float("MC_GATEWAY_CALL_TIMEOUT", 60.0)
GATEWAY_BACKOFF_BASE = env_float("MC_GATEWAY_BACKOFF_BASE", 1.0)
GATEWAY_BACKOFF_CAP = env_float("MC_GATEWAY_BACKOFF_CAP", 60.0)
# Web processes watch a separate gateway's heartbeat (mcps/gateway/monitor.py): its
# servers are shown as unknown within seconds of its death, not as connected.
GATEWAY_MONITOR = env_bool("MC_GATEWAY_MONITOR", not GATEWAY_EMBEDDED)

# Mission Control's own directives (automations/directives/*.yaml), loaded after every
# migrate; `manage.py load_directives` does the same on demand.
LOAD_SYSTEM_DIRECTIVES = env_bool("MC_LOAD_SYSTEM_DIRECTIVES", True)
# The directive engine's runaway guards (`automations:` in mission_control.yml).
DIRECTIVE_MAX_STEPS = MC.automations.max_steps
DIRECTIVE_MAX_FOREACH_ITEMS = MC.automations.max_foreach_items
DIRECTIVE_STEP_TIMEOUT = float(MC.automations.step_timeout)
DIRECTIVE_RUN_TIMEOUT = float(MC.automations.run_timeout)
DIRECTIVE_MAX_CONCURRENT = MC.automations.max_concurrent
DIRECTIVE_MAX_DEPTH = MC.automations.max_depth

# `manage.py serve`: the web processes (several share one listening socket).
SERVER_HOST = env_str("MC_HOST", MC.server.host) or MC.server.host
SERVER_PORT = env_int("MC_PORT", MC.server.port)
SERVER_WORKERS = env_int("MC_WORKERS", MC.server.workers)

# First run: `seed_demo` and the demo agent `serve` starts (config `demo: false` or MC_DEMO=0: off).
DEMO = env_bool("MC_DEMO", MC.demo)
DEMO_INTERVAL = env_float("MC_DEMO_INTERVAL", 20.0)  # seconds between the demo agent's rounds

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Hardening (missioncontrol/redaction.py, missioncontrol/ratelimit.py): secrets masked
# before storage, and the limits answered with 429 + Retry-After.


def _redaction() -> RedactionConfig:
    pii = env_str("MC_REDACT_PII")
    if pii is None:
        return MC.redaction
    try:
        return dataclasses.replace(MC.redaction, pii=parse_pii(pii, "MC_REDACT_PII"))
    except ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


REDACTION = _redaction()


def _rate_limits() -> RateLimitsConfig:
    limits, env = MC.rate_limits, os.environ
    try:
        return dataclasses.replace(
            limits,
            ingest=parse_rate(env.get("MC_RATE_LIMIT_INGEST") or limits.ingest, "MC_RATE_LIMIT_INGEST"),
            api=parse_rate(env.get("MC_RATE_LIMIT_API") or limits.api, "MC_RATE_LIMIT_API"),
            websocket_frames=parse_rate(
                env.get("MC_RATE_LIMIT_WS_FRAMES") or limits.websocket_frames, "MC_RATE_LIMIT_WS_FRAMES"
            ),
            websocket_connections=env_int("MC_WS_MAX_CONNECTIONS_PER_USER", limits.websocket_connections),
            mcp=parse_rate(env.get("MC_RATE_LIMIT_MCP") or limits.mcp, "MC_RATE_LIMIT_MCP"),
            otlp=parse_rate(env.get("MC_RATE_LIMIT_OTLP") or limits.otlp, "MC_RATE_LIMIT_OTLP"),
            login=parse_rate(env.get("MC_RATE_LIMIT_LOGIN") or limits.login, "MC_RATE_LIMIT_LOGIN"),
            login_address=parse_rate(
                env.get("MC_RATE_LIMIT_LOGIN_ADDRESS") or limits.login_address, "MC_RATE_LIMIT_LOGIN_ADDRESS"
            ),
        )
    except ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from exc


RATE_LIMITS = _rate_limits()
# Password checks running at once in a web process (missioncontrol/logins.py); a sign-in
# finding none free within LOGIN_SLOT_WAIT seconds is answered 503 + Retry-After.
LOGIN_CONCURRENCY = env_int("MC_LOGIN_CONCURRENCY", max(2, os.cpu_count() or 2))
LOGIN_SLOT_WAIT = env_float("MC_LOGIN_SLOT_WAIT", 0.5)
AUTHENTICATION_BACKENDS = ["missioncontrol.logins.ThrottledModelBackend"]


def _fernet_keys() -> list[str]:
    keys = env_str("MC_SECRET_KEY_FERNET") or ",".join(MC.security.fernet_keys)
    out = [k.strip() for k in keys.split(",") if k.strip()]
    for index, key in enumerate(out, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"MC_SECRET_KEY_FERNET: key {index} is not a Fernet key (32 url-safe base64 bytes); make "
                "one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    return out


# Keys encrypting MCP servers' env and headers at rest (missioncontrol/encryption.py);
# none: a key derived from SECRET_KEY.
FERNET_KEYS = _fernet_keys()
# Origins a browser may open /ws/ from, besides this server's own (missioncontrol/origins.py).
WS_ALLOWED_ORIGINS = [
    o.strip()
    for o in (env_str("MC_ALLOWED_ORIGINS") or ",".join(MC.security.allowed_origins)).split(",")
    if o.strip()
]
RATE_LIMIT_KEY_PREFIX = f"{CHANNEL_PREFIX}:ratelimit"


# Response headers and cookies, in every mode (these are Django's defaults, stated).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECRET_KEY_FALLBACKS = [k for k in (env_str("SECRET_KEY_FALLBACKS", "") or "").split(",") if k]
# Behind a proxy that terminates TLS: the header it sets, e.g. X-Forwarded-Proto (its
# value "https" marks a secure request). Only set it if the proxy always sets or strips it.
_PROXY_SSL_HEADER = env_str("MC_PROXY_SSL_HEADER")
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")


def _require_strong_secret_key() -> None:
    weak = [k for k in [SECRET_KEY, *SECRET_KEY_FALLBACKS] if len(k) < 50 or len(set(k)) < 5]
    if weak or SECRET_KEY.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            "SECRET_KEY (and each SECRET_KEY_FALLBACKS key): MC_ENV=production needs at least 50 "
            "random characters; make one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )


if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG: must be off when MC_ENV=production")
    _require_strong_secret_key()
    # HTTPS only: plain HTTP is redirected (but /health, for load balancers' probes),
    # browsers remember it for a year (HSTS), cookies never travel in clear.
    SECURE_SSL_REDIRECT = env_bool("MC_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health(/live|/ready)?$"]
    SECURE_HSTS_SECONDS = env_int("MC_HSTS_SECONDS", 365 * 86400)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("MC_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("MC_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
