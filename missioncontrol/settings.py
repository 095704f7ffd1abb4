"""Mission Control settings: one module, configured by the environment and MC_CONFIG.

With neither DATABASE_URL nor REDIS_URL set this is the embedded default: a SQLite
file (WAL), the in-memory channel layer and in-process scheduling, so `make run`
works with nothing else installed. Bad configuration stops start-up with a message
naming the setting.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from missioncontrol.config import ConfigError, load_config

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

DEBUG = env_bool("DEBUG", EMBEDDED)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
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
ALLOWED_HOSTS = [h.strip() for h in (env_str("ALLOWED_HOSTS", "*") or "*").split(",") if h.strip()]
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages need a signed-in user (redirect to LOGIN_URL); the API answers 401 itself.
    "missioncontrol.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


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
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("MC_CHANNEL_PREFIX", "mc") or "mc"},
        }
    }


CHANNEL_LAYERS = _channel_layers()

# Celery: Redis as broker when configured; otherwise tasks run eagerly in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Periodic tasks: run by `celery beat` with Redis, by the web process itself without
# (missioncontrol/scheduler.py).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "mcps.check-health": {"task": "mcps.check_health", "schedule": float(MC.mcps.health_check_interval)},
}
SCHEDULE_IN_PROCESS = env_bool("MC_SCHEDULE_IN_PROCESS", REDIS_URL is None)

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

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["missioncontrol.renderers.FastJSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Authentication (see missioncontrol/authentication.py): an API token or a JWT as
    # `Authorization: Bearer`, or the session. The first class makes a missing one 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "missioncontrol.authentication.APITokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["missioncontrol.permissions.RolePermission"],
}

# Authentication: sessions for pages, JWT (POST /api/auth/token/) and API tokens for clients.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
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
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "missioncontrol.openapi.add_components",
        "missioncontrol.openapi.add_plain_endpoints",
    ],
}

# Ingest limits (answered with 413 past them).
INGEST_MAX_BODY_BYTES = env_int("MC_INGEST_MAX_BODY_BYTES", MC.ingest.max_body_bytes)
INGEST_MAX_EVENTS = env_int("MC_INGEST_MAX_EVENTS", MC.ingest.max_events)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(INGEST_MAX_BODY_BYTES, 2_621_440)

WS_LOG_HISTORY = MC.websocket.log_history
# Per web process: a socket past the cap is closed with 1013 (try again later).
WS_MAX_CONNECTIONS = env_int("MC_WS_MAX_CONNECTIONS", MC.websocket.max_connections)
WS_PING_INTERVAL = MC.websocket.ping_interval
WS_PING_TIMEOUT = MC.websocket.ping_timeout

# The MCP gateway: a process of its own (`manage.py run_gateway`) when there is a Redis
# channel layer to reach it through; inside the web process on the embedded default.
GATEWAY_EMBEDDED = env_bool("MC_GATEWAY_EMBEDDED", REDIS_URL is None)
GATEWAY_CALL_TIMEOUT = env_float("MC_GATEWAY_CALL_TIMEOUT", 60.0)
GATEWAY_BACKOFF_BASE = env_float("MC_GATEWAY_BACKOFF_BASE", 1.0)
GATEWAY_BACKOFF_CAP = env_float("MC_GATEWAY_BACKOFF_CAP", 60.0)

# `manage.py serve`: the web processes (several share one listening socket).
SERVER_HOST = env_str("MC_HOST", MC.server.host) or MC.server.host
SERVER_PORT = env_int("MC_PORT", MC.server.port)
SERVER_WORKERS = env_int("MC_WORKERS", MC.server.workers)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
