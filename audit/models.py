"""Every permission check an agent or server reported, with its reasons."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Now


class PermissionEvent(models.Model):
    """One permission check: who asked for what, the verdict, and why."""

    class Action(models.TextChoices):
        READ = "read"
        WRITE = "write"
        EXECUTE = "execute"

    class Severity(models.TextChoices):
        INFO = "info"
        WARN = "warn"
        CRITICAL = "critical"

    id = models.CharField(primary_key=True, max_length=200)
    timestamp = models.DateTimeField()
    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="permission_events")
    user_id = models.CharField(max_length=200, blank=True, default="")
    resource = models.CharField(max_length=500)
    action = models.CharField(max_length=16, choices=Action.choices)
    granted = models.BooleanField()
    reason = models.TextField(blank=True, default="")
    rules_checked = models.JSONField(default=list, blank=True)
    inheritance_chain = models.JSONField(default=list, blank=True)
    escalation_detected = models.BooleanField(default=False)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    received_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["thread", "-timestamp"], name="perm_thread_time"),
            models.Index(fields=["granted", "-timestamp"], name="perm_granted_time"),
            models.Index(fields=["user_id", "-timestamp"], name="perm_user_time"),
            models.Index(fields=["-timestamp"], name="perm_time"),
        ]

    def __str__(self) -> str:
        verdict = "granted" if self.granted else "denied"
        return f"{self.user_id} {self.action} {self.resource}: {verdict}"

    @staticmethod
    def default_severity(granted: bool, escalation_detected: bool) -> str:
        """Critical for an escalation, warn for a denial, info for a plain grant."""
        if escalation_detected:
            return PermissionEvent.Severity.CRITICAL
        return PermissionEvent.Severity.INFO if granted else PermissionEvent.Severity.WARN

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "permission.check",
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "thread_id": self.thread_id,
            "user_id": self.user_id,
            "resource": self.resource,
            "action": self.action,
            "granted": self.granted,
            "reason": self.reason,
            "rules_checked": self.rules_checked,
            "inheritance_chain": self.inheritance_chain,
            "escalation_detected": self.escalation_detected,
            "severity": self.severity,
        }
