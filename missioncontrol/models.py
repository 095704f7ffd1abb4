"""What each user keeps: saved views of the lists, and preferences."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from missioncontrol.filters import StrictFilterSet


def _filtersets() -> dict[str, type[StrictFilterSet]]:
    from audit.filtersets import PermissionEventFilterSet
    from logs.filtersets import LogFilterSet
    from threads.filtersets import ThreadFilterSet

    return {"threads": ThreadFilterSet, "logs": LogFilterSet, "permissions": PermissionEventFilterSet}


# The columns each kind of list can show, in the REST rows' field names.
COLUMNS: dict[str, tuple[str, ...]] = {
    "threads": (
        "id",
        "parent_id",
        "mcp_id",
        "session_id",
        "status",
        "error_count",
        "user_input",
        "started_at",
        "ended_at",
        "duration_ms",
    ),
    "logs": ("id", "timestamp", "level", "service", "thread_id", "mcp_id", "message", "context", "exception"),
    "permissions": (
        "id",
        "timestamp",
        "thread_id",
        "user_id",
        "resource",
        "action",
        "granted",
        "reason",
        "severity",
        "escalation_detected",
    ),
}
CONFIG_KEYS = {"kind", "filters", "columns", "live"}


def _at(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate_filters(kind: str, filters: Any, prefix: str = "") -> dict[str, str]:
    """`filters` as query parameters the `kind` list accepts; ValidationError naming each bad one.

    Error keys are the parameter names, after `prefix` (e.g. "filters.levels").
    """
    if not isinstance(filters, dict):
        raise ValidationError({prefix or "filters": "Give an object of filter parameters."})
    params: dict[str, str] = {}
    for name, value in filters.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif not isinstance(value, str | int | float):
            raise ValidationError(
                {_at(prefix, name): "Give a string, a number, a boolean or a list of strings."}
            )
        params[name] = str(value)
    problems = _filtersets()[kind](params).problems()
    problems.pop("cursor", None)
    problems.pop("limit", None)
    if problems:
        raise ValidationError({_at(prefix, name): reasons for name, reasons in problems.items()})
    return params


def validate_view_config(config: Any) -> dict[str, Any]:
    """A saved view's config, checked: `kind`, its `filters`, optional `columns` and `live`."""
    if not isinstance(config, dict):
        raise ValidationError({"kind": "Give an object with a kind and its filters."})
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ValidationError({name: "Unknown key." for name in unknown})
    kind = config.get("kind")
    if kind not in COLUMNS:
        raise ValidationError({"kind": f"Give one of: {', '.join(COLUMNS)}."})
    clean: dict[str, Any] = {"kind": kind}
    clean["filters"] = validate_filters(kind, config.get("filters", {}), "filters")
    columns = config.get("columns", list(COLUMNS[kind]))
    if not isinstance(columns, list) or not columns or not all(c in COLUMNS[kind] for c in columns):
        raise ValidationError({"columns": f"Give a non-empty list of: {', '.join(COLUMNS[kind])}."})
    clean["columns"] = columns
    live = config.get("live", True)
    if not isinstance(live, bool):
        raise ValidationError({"live": "Give true or false."})
    clean["live"] = live
    return clean


def _flat(field: str, check: Any, *args: Any) -> Any:
    """`check(*args)`, its errors gathered under the model field `field` (for forms, the admin)."""
    try:
        return check(*args)
    except ValidationError as exc:
        messages = [f"{key}: {m}" for key, errs in exc.message_dict.items() for m in errs]
        raise ValidationError({field: messages}) from None


class SavedView(models.Model):
    """A named list (threads, logs or permission checks) with its filters and columns."""

    global_because = "read only through its owner (SavedViewViewSet filters by user)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    view_config = models.JSONField(default=dict)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_user_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.view_config = _flat("view_config", validate_view_config, self.view_config)


class UserPreference(models.Model):
    """One user's theme and default log filters."""

    global_because = "read only by its user (/api/preferences)"

    class Theme(models.TextChoices):
        SYSTEM = "system"
        LIGHT = "light"
        DARK = "dark"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="preference"
    )
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.SYSTEM)
    log_filters = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of {self.user}"

    def clean(self) -> None:
        self.log_filters = _flat("log_filters", validate_filters, "logs", self.log_filters)


class TaskRunQuerySet(models.QuerySet["TaskRun"]):
    def running(self) -> TaskRunQuerySet:
        return self.filter(status=TaskRun.Status.STARTED)

    def mark_lost(self, reason: str) -> int:
        """End runs whose worker is gone (never finished, never to finish): status lost."""
        return self.running().update(status=TaskRun.Status.LOST, finished_at=Now(), error=reason)


class TaskRun(models.Model):
    """One Celery task execution: what ran, with which arguments (digest), how it ended."""

    global_because = "admins only (missioncontrol.view_taskrun)"

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        RETRYING = "retrying"
        LOST = "lost"  # the worker died mid-execution; the broker redelivers the message

    task_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, db_index=True)
    args_digest = models.CharField(max_length=64, help_text="SHA-256 of the JSON of args and kwargs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED, db_index=True)
    deliveries = models.PositiveIntegerField(default=1, help_text="Executions of this message (redeliveries)")
    retries = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(db_default=Now())
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    objects = TaskRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "started_at"], name="taskrun_status_started")]

    def __str__(self) -> str:
        return f"{self.name} {self.task_id} ({self.status})"


class Team(models.Model):
    """A group of users who see the threads, logs and checks their keys and tokens produced."""

    global_because = "the list of teams, not their data"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["name"]
        permissions = [("view_all_teams", "Can see every team's threads, logs and checks")]

    def __str__(self) -> str:
        return self.name


def hash_secret(raw: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough: no dictionary to guess from.
    return hashlib.sha256(raw.encode()).hexdigest()


TOKEN_PREFIX = "mct_"
# A secret's use is written (last_used_at, an access event) at most this often.
USE_RESOLUTION = timedelta(minutes=1)


S = TypeVar("S", bound="HashedSecret")


class HashedSecretQuerySet(models.QuerySet[S]):
    def active(self) -> Self:
        return self.filter(revoked_at__isnull=True)

    def matching(self, raw: str) -> Self:
        """The active secrets whose hash is `raw`'s (one at most: the hash is unique)."""
        return self.active().filter(**{self.model.hash_field: hash_secret(raw)})


class HashedSecret(models.Model):
    """A bearer secret kept only as its hash (API tokens, ingest keys): the raw secret is
    shown once when issued; it is found by its hash, revoked, and its use recorded."""

    # Set by each kind: the field holding the hash, the raw secret's start, how much of it
    # is kept readable (`prefix`, to tell secrets apart in lists).
    hash_field: ClassVar[str]
    secret_prefix: ClassVar[str]
    shown: ClassVar[int]

    prefix = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"  # type: ignore[attr-defined]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def new_secret(self) -> str:
        """Give the (unsaved) secret a fresh value; the raw secret, to be shown once."""
        raw = self.secret_prefix + secrets.token_urlsafe(32)
        self.prefix = raw[: self.shown]
        setattr(self, self.hash_field, hash_secret(raw))
        return raw

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self) -> bool:
        """Mark the secret used; True if this use was written (at most once per USE_RESOLUTION)."""
        now = timezone.now()
        if self.last_used_at is not None and now - self.last_used_at < USE_RESOLUTION:
            return False
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USE_RESOLUTION)
        # The conditional update makes concurrent requests agree on which one writes.
        written = type(self)._default_manager.filter(stale, pk=self.pk).update(last_used_at=now) == 1
        self.last_used_at = now
        return written


class APITokenQuerySet(HashedSecretQuerySet["APIToken"]):
    def issue(
        self, name: str, owner: Any, team: Team | None = None, scope: str = "all"
    ) -> tuple[APIToken, str]:
        """Create a token acting as `owner` within `team` (`scope`: what it may reach, see
        APIToken.Scope); the raw token is returned once, never stored."""
        token = APIToken(name=name, owner=owner, team=team, scope=scope)
        raw = token.new_secret()
        token.save()
        return token, raw

    def authenticate(self, raw: str) -> APIToken | None:
        """The active token whose hash matches `raw` (its owner active too), or None."""
        if not raw.startswith(TOKEN_PREFIX):
            return None
        return self.matching(raw).select_related("owner", "team").filter(owner__is_active=True).first()


class APIToken(HashedSecret):
    """A bearer token for /mcp and the REST API: acts as its owner, within its team.

    A metrics-only token reads `/metrics` (a Prometheus scraper's credential) and is
    refused (403) everywhere else.
    """

    global_because = "admins only (missioncontrol.view_apitoken)"
    hash_field, secret_prefix, shown = "token_hash", TOKEN_PREFIX, 12

    class Scope(models.TextChoices):
        ALL = "all", "acts as its owner everywhere"
        METRICS = "metrics", "reads /metrics only"

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_tokens",
        help_text="Threads recorded through this token belong to this team.",
    )
    scope = models.CharField(
        max_length=16,
        choices=Scope.choices,
        default=Scope.ALL,
        help_text="What the token may reach: everything its owner may, or /metrics only.",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = APITokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    @property
    def metrics_only(self) -> bool:
        return self.scope == self.Scope.METRICS
