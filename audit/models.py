"""Every permission check an agent or server reported, with its reasons; the policy rules
the gateway enforces on routed calls; and every access to Mission Control itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from missioncontrol.roles import team_scope


class PermissionEventQuerySet(models.QuerySet["PermissionEvent"]):
    def visible_to(self, user: Any) -> Self:
        """Checks of the threads `user` may see (ThreadQuerySet.visible_to)."""
        return self.of_teams(team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        return self if teams is None else self.filter(thread__team_id__in=teams)


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
    # The escalation rules that fired: [{"rule": "child_exceeds_parent", "detail": "..."}].
    escalations = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    received_at = models.DateTimeField(db_default=Now())

    objects = PermissionEventQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["thread", "-timestamp"], name="perm_thread_time"),
            models.Index(fields=["granted", "-timestamp"], name="perm_granted_time"),
            models.Index(fields=["user_id", "-timestamp"], name="perm_user_time"),
            models.Index(fields=["-timestamp"], name="perm_time"),
            # Escalation detection: a subject's history on one resource.
            models.Index(fields=["user_id", "resource", "-timestamp"], name="perm_user_resource_time"),
            # ...and its denials alone (grant_after_denials, checked for every batch of
            # grants): without it a busy agent's every grant in the window is read.
            models.Index(
                fields=["user_id", "resource", "-timestamp"],
                condition=models.Q(granted=False),
                name="perm_user_resource_denials",
            ),
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
            "escalations": self.escalations,
            "severity": self.severity,
        }


class PolicyRuleQuerySet(models.QuerySet["PolicyRule"]):
    def in_evaluation_order(self) -> PolicyRuleQuerySet:
        """Enabled rules, higher priority first, deny before allow at equal priority."""
        return self.filter(enabled=True).order_by("-priority", "-effect", "id")  # "deny" > "allow"


class PolicyRule(models.Model):
    """Who may do what on which server's tools: evaluated on every call routed by the gateway."""

    global_because = "policy rules apply to every caller; only admins change them"

    class SubjectKind(models.TextChoices):
        TOKEN = "token"
        USER = "user"
        TEAM = "team"
        ANY = "any"

    class Effect(models.TextChoices):
        ALLOW = "allow"
        DENY = "deny"

    class RuleAction(models.TextChoices):
        READ = "read"
        WRITE = "write"
        EXECUTE = "execute"
        ANY = "any"

    subject_kind = models.CharField(max_length=8, choices=SubjectKind.choices, default=SubjectKind.ANY)
    subject_value = models.CharField(
        max_length=200, blank=True, default="", help_text="token id, username or team slug; empty for any"
    )
    server = models.CharField(max_length=200, default="*", help_text="glob over server ids, e.g. git or g*")
    tool = models.CharField(max_length=200, default="*", help_text="glob over tool names, e.g. git_* or *")
    action = models.CharField(max_length=8, choices=RuleAction.choices, default=RuleAction.ANY)
    effect = models.CharField(max_length=8, choices=Effect.choices)
    priority = models.IntegerField(default=0, help_text="higher first; deny wins a tie")
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PolicyRuleQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "-effect", "id"]

    def __str__(self) -> str:
        any_one = self.subject_kind == self.SubjectKind.ANY
        who = "anyone" if any_one else f"{self.subject_kind}:{self.subject_value}"
        return f"#{self.pk} {self.effect} {who} {self.action} {self.server}/{self.tool}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.subject_kind == self.SubjectKind.ANY:
            if self.subject_value:
                errors["subject_value"] = "must be empty when subject_kind is any"
        elif not self.subject_value:
            errors["subject_value"] = f"required for subject_kind {self.subject_kind}"
        for name in ("server", "tool"):
            value = getattr(self, name)
            if not value or any(c.isspace() for c in value):
                errors[name] = "expected a glob without spaces, e.g. * or git_*"
        if errors:
            raise ValidationError(errors)


class AccessEventQuerySet(models.QuerySet["AccessEvent"]):
    def since(self, when: datetime) -> Self:
        return self.filter(timestamp__gte=when)


class AccessEvent(models.Model):
    """Who did what to Mission Control itself: a login, a token's issue or use, a command.

    Written through `audit.access` (`record()`, or `row()` + `store_rows()` off a hot
    path), never directly. `actor_name` keeps the name given (a failed login's, or a
    user since deleted).
    """

    global_because = "the access audit is read by admins only (audit.view_accessevent)"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    timestamp = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=200, blank=True, default="")
    # Open-ended (other apps record their own commands); audit.access.ACTIONS lists ours.
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=500, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AccessEventQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["-timestamp"], name="access_time"),
            models.Index(fields=["actor_name", "-timestamp"], name="access_actor_time"),
            models.Index(fields=["action", "-timestamp"], name="access_action_time"),
        ]

    def __str__(self) -> str:
        who = self.actor_name or "-"
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target}: {self.outcome}"

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "timestamp": self.timestamp.isoformat(),
            "actor": self.actor_name,
            "actor_id": self.actor_id,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "details": self.details,
            "ip": self.ip,
        }
