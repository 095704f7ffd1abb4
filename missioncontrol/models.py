"""What each user keeps: saved views of the lists, and preferences."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now

from missioncontrol.filters import StrictFilterSet


def _filtersets() -> dict[str, type[StrictFilterSet]]:
    from audit.filtersets import PermissionEventFilterSet
    from logs.filtersets import LogFilterSet
    from threads.filtersets import ThreadFilterSet

    return {"threads": ThreadFilterSet, "logs": LogFilterSet, "permissions": PermissionEventFilterSet}


# The columns each kind of list can show, in the REST rows' field names.
COLUMNS: dict[str, tuple[str, ...]] = {
    "threads": ("id", "parent_id", "mcp_id", "status", "user_input", "started_at", "ended_at", "duration_ms"),
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
