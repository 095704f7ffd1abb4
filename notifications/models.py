"""Notification channels: where alerts leave Mission Control, with their rules and history.

A channel belongs to a team (it gets the alerts of that team's threads and servers) or
is global (it gets every alert). Its targets are Apprise URLs, encrypted at rest like a
server's env and headers. An `Alert` row is one alert key while it is open; a
`Delivery` is one message (the alert, its resolution, or a test) to one channel, sent
by a Celery task in one or more `DeliveryAttempt`s.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime, timedelta
from typing import Any, Self

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from missioncontrol import roles
from missioncontrol.encryption import EncryptedJSONField
from notifications import sending
from notifications.kinds import KINDS, ONE_OFF, RANK, SEVERITIES, Raised


class Severity(models.TextChoices):
    INFO = "info"
    WARN = "warn"
    CRITICAL = "critical"


assert tuple(Severity.values) == SEVERITIES

KIND_CHOICES = [(k, k) for k in KINDS]
# What a channel is set with: the form the API, the pages and the admin all edit.
CHANNEL_SETTINGS = (
    "name",
    "team",
    "targets",
    "kinds",
    "min_severity",
    "quiet_start",
    "quiet_end",
    "time_zone",
    "quiet_critical",
    "send_resolved",
    "enabled",
)
VIEW_CHANNEL = "notifications.view_channel"
TEST_CHANNEL = "notifications.test_channel"
CHANGE_CHANNEL = "notifications.change_channel"


def sees_targets(user: Any) -> bool:
    """Only admins (who manage channels) see target URLs; everyone else sees them masked."""
    return roles.can(user, CHANGE_CHANNEL)


class ChannelQuerySet(models.QuerySet["Channel"]):
    def visible_to(self, user: Any) -> Self:
        """Admins see every channel; others their teams' (global channels are admins' only)."""
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(team_id__in=teams)

    def enabled(self) -> Self:
        return self.filter(enabled=True)

    def reencrypt_secrets(self) -> int:
        """Write every channel's targets again, encrypted with the first key (rotate_secrets)."""
        channels = list(self.only("id", "targets"))
        self.bulk_update(channels, ["targets"], batch_size=500)
        return len(channels)

    def for_team(self, team_id: int | None) -> Self:
        """The channels an alert of `team_id` goes to: the global ones and its team's."""
        return self.filter(Q(team__isnull=True) | Q(team_id=team_id)) if team_id else self.filter(team=None)


class Channel(models.Model):
    """A team's (or the global) list of Apprise targets, with the rules of what is sent."""

    name = models.CharField(max_length=200, unique=True)
    team = models.ForeignKey(
        "missioncontrol.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_channels",
        help_text="Alerts of this team's threads and servers; empty: global, every alert.",
    )
    # Secrets (webhook tokens, SMTP passwords) live in the URLs: encrypted at rest.
    targets = EncryptedJSONField(default=list, blank=True, help_text="Apprise URLs, one per target.")
    kinds = models.JSONField(default=list, blank=True, help_text="Alert kinds sent; empty: every kind.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    quiet_start = models.TimeField(null=True, blank=True, help_text="Quiet hours start (in time_zone).")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Quiet hours end (in time_zone).")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Paris.")
    quiet_critical = models.BooleanField(
        default=True, help_text="Critical alerts (and their resolutions) still go out in quiet hours."
    )
    send_resolved = models.BooleanField(default=True, help_text="Say when an alert clears.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("test_channel", "Can send a channel a test message")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("notification-channel-page", args=[self.pk])

    # -- rules

    def problems(self) -> dict[str, list[str]]:
        """What is wrong with the channel's settings, by field (empty: nothing)."""
        problems: dict[str, list[str]] = {}
        if not isinstance(self.targets, list):
            problems["targets"] = ["expected a list of Apprise URLs"]
        else:
            if len(self.targets) > sending.MAX_TARGETS:
                problems["targets"] = [f"at most {sending.MAX_TARGETS} targets"]
            for i, url in enumerate(self.targets):
                problem = sending.target_problem(url)
                if problem:
                    problems.setdefault("targets", []).append(f"target {i + 1}: {problem}")
        if not isinstance(self.kinds, list) or not all(k in KINDS for k in self.kinds):
            problems["kinds"] = [f"expected a list of alert kinds among {', '.join(KINDS)}"]
        try:
            zoneinfo.ZoneInfo(str(self.time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems["time_zone"] = [
                f"unknown time zone {self.time_zone!r}; use an IANA name like Europe/Paris"
            ]
        if (self.quiet_start is None) != (self.quiet_end is None):
            field = "quiet_end" if self.quiet_end is None else "quiet_start"
            problems[field] = ["quiet hours need both a start and an end"]
        elif self.quiet_start is not None and self.quiet_start == self.quiet_end:
            problems["quiet_end"] = ["quiet hours must end at another time than they start"]
        return problems

    def clean(self) -> None:
        self.targets = [u.strip() for u in self.targets] if isinstance(self.targets, list) else self.targets
        problems = self.problems()
        if problems:
            raise ValidationError(problems)

    def quiet_at(self, when: datetime) -> bool:
        """Whether `when` falls in the quiet hours (a window may span midnight)."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        local = when.astimezone(zoneinfo.ZoneInfo(self.time_zone)).time()
        start, end = self.quiet_start, self.quiet_end
        return start <= local < end if start < end else (local >= start or local < end)

    def allows(self, kind: str, severity: str, when: datetime) -> bool:
        """Whether an alert of `kind` and `severity` (or its resolution) is sent at `when`."""
        if not self.enabled or (self.kinds and kind not in self.kinds):
            return False
        if RANK[severity] < RANK[self.min_severity]:
            return False
        if self.quiet_at(when):
            return severity == Severity.CRITICAL and self.quiet_critical
        return True

    def masked_targets(self) -> list[str]:
        return [sending.mask(url) for url in self.targets or []]

    def targets_for(self, user: Any) -> list[str]:
        """The targets as `user` may see them: whole for admins, masked for everyone else."""
        return list(self.targets or []) if sees_targets(user) else self.masked_targets()

    def quiet_hours(self) -> str:
        if self.quiet_start is None or self.quiet_end is None:
            return ""
        return f"{self.quiet_start:%H:%M}–{self.quiet_end:%H:%M} {self.time_zone}"


class AlertQuerySet(models.QuerySet["Alert"]):
    def visible_to(self, user: Any) -> Self:
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(team_id__in=teams)

    def open(self) -> Self:
        return self.filter(resolved_at__isnull=True)

    def resolvable(self) -> Self:
        return self.open().exclude(kind__in=ONE_OFF)

    def raise_alert(self, raised: Raised) -> tuple[Alert, bool]:
        """The open alert of `raised.key`, made now (True) or seen again (False)."""
        now = timezone.now()
        for _ in range(2):  # a concurrent raise of the same key makes it first: then it repeats
            with transaction.atomic():
                alert = self.select_for_update().filter(key=raised.key, resolved_at__isnull=True).first()
                if alert is not None:
                    alert.repeats += 1
                    alert.last_seen_at = now
                    if RANK[raised.severity] > RANK[alert.severity]:
                        alert.severity, alert.title, alert.message = (
                            raised.severity,
                            raised.title,
                            raised.message,
                        )
                    alert.save(update_fields=["repeats", "last_seen_at", "severity", "title", "message"])
                    return alert, False
                try:
                    with transaction.atomic():
                        return (
                            self.create(
                                key=raised.key,
                                kind=raised.kind,
                                subject=raised.subject,
                                team_id=raised.team_id(),
                                severity=raised.severity,
                                title=raised.title,
                                message=raised.message,
                                details=raised.details,
                                opened_at=now,
                                last_seen_at=now,
                            ),
                            True,
                        )
                except IntegrityError:
                    continue
        raise RuntimeError(f"alert {raised.key} could be neither made nor found")


class Alert(models.Model):
    """One alert key (kind + subject) while it is open, and how it cleared."""

    key = models.CharField(max_length=300, db_index=True)
    kind = models.CharField(max_length=50, choices=KIND_CHOICES)
    subject = models.CharField(max_length=250)
    team = models.ForeignKey(
        "missioncontrol.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARN)
    title = models.CharField(max_length=300)
    message = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    repeats = models.PositiveIntegerField(default=0, help_text="Times it was raised again while open.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=300, blank=True, default="")

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=Q(resolved_at__isnull=True),
                name="notifications_one_open_alert_per_key",
            )
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def one_off(self) -> bool:
        return self.kind in ONE_OFF

    def resolve(self, reason: str) -> bool:
        """Close the alert (False if something else closed it first)."""
        now = timezone.now()
        closed = Alert.objects.filter(pk=self.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolution=reason[:300]
        )
        if closed:
            self.resolved_at, self.resolution = now, reason[:300]
        return bool(closed)

    def text(self, purpose: str) -> tuple[str, str]:
        """(title, body) of the message about this alert: raised, or resolved."""
        team = self.team.name if self.team_id and self.team else "no team"
        if purpose == Delivery.Purpose.RESOLVED:
            opened_for = _duration((self.resolved_at or timezone.now()) - self.opened_at)
            return (
                f"[resolved] {self.title}"[:300],
                f"{self.resolution}.\nOpen for {opened_for} (since {self.opened_at:%Y-%m-%d %H:%M:%S} UTC).\n"
                f"Alert {self.key} · {team}",
            )
        lines = [self.message] if self.message else []
        lines.append(f"{self.severity} · {self.kind} · {self.subject} · {team}")
        lines.append(f"Raised at {self.opened_at:%Y-%m-%d %H:%M:%S} UTC")
        if not self.one_off:
            lines.append("You will get one message when it clears; repeats until then send nothing.")
        return f"[{self.severity}] {self.title}"[:300], "\n".join(lines)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def visible_to(self, user: Any) -> Self:
        """Deliveries of the channels `user` sees (ChannelQuerySet.visible_to)."""
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(channel__team_id__in=teams)

    def queue(self, channel: Channel, alert: Alert | None, purpose: str) -> Delivery | None:
        """A new pending message to `channel`; None if this alert's message of this
        purpose was queued for it already (the dedupe: one per alert while open)."""
        if alert is None:
            title, body = (
                "Mission Control test message",
                f"A test of the channel {channel.name}: its targets receive alerts.",
            )
            severity = Severity.INFO
        else:
            title, body = alert.text(purpose)
            severity = alert.severity
        try:
            with transaction.atomic():
                return self.create(
                    channel=channel,
                    alert=alert,
                    purpose=purpose,
                    severity=severity,
                    title=title,
                    body=body,
                )
        except IntegrityError:
            return None

    def claim(self, delivery_id: Any) -> Delivery | None:
        """Take a pending delivery for one attempt (None: sent, given up, or taken by another).

        Claimed in one UPDATE, so a task delivered twice (a worker restarted) sends once.
        """
        now = timezone.now()
        claimed = self.filter(pk=delivery_id, status__in=Delivery.WAITING).update(
            status=Delivery.Status.SENDING, claimed_at=now
        )
        return self.select_related("channel", "alert").get(pk=delivery_id) if claimed else None

    def supersede(self, delivery_id: Any) -> bool:
        """Give up a delivery that is waiting (not being sent): its alert cleared first."""
        return bool(
            self.filter(pk=delivery_id, status__in=Delivery.WAITING).update(
                status=Delivery.Status.FAILED,
                error="superseded: the alert cleared before the message could be sent",
                finished_at=timezone.now(),
            )
        )

    def overdue(self, grace: timedelta) -> Self:
        """Waiting deliveries whose attempt is `grace` past due: their hand-off was lost."""
        return self.filter(
            status__in=Delivery.WAITING,
            next_attempt_at__lt=timezone.now() - grace,
        )

    def interrupted(self, grace: timedelta) -> int:
        """Fail deliveries claimed more than `grace` ago and never finished: the process
        sending them stopped. Not sent again, since the message may have gone out."""
        return self.filter(status=Delivery.Status.SENDING, claimed_at__lt=timezone.now() - grace).update(
            status=Delivery.Status.FAILED,
            error="interrupted: the process sending it stopped mid-send; not sent again, so "
            "no target gets it twice",
        )


class Delivery(models.Model):
    """One message (an alert, its resolution, or a test) to one channel, and how it went."""

    class Purpose(models.TextChoices):
        ALERT = "alert"
        RESOLVED = "resolved"
        TEST = "test"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    WAITING = (Status.PENDING, Status.RETRYING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    tries = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # Hashes of the targets that took the message: a retry goes to the others only.
    delivered = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "alert", "purpose"],
                condition=Q(alert__isnull=False),
                name="notifications_one_message_per_alert",
            )
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.purpose} to {self.channel_id}: {self.status}"

    @property
    def notify_type(self) -> str:
        return "resolved" if self.purpose == self.Purpose.RESOLVED else self.severity

    def attempt(self, *, last: bool, backoff: timedelta) -> sending.Outcome:
        """Send to the targets that have not taken it yet, once; record the attempt.

        The delivery must be claimed (SENDING). Sent when every target took it; else
        failed if `last`, or retrying at now + `backoff`.
        """
        started = timezone.now()
        targets = list(self.channel.targets or [])
        outcome = sending.send(targets, self.title, self.body, self.notify_type, set(self.delivered))
        finished = timezone.now()
        self.tries += 1
        self.delivered = [*self.delivered, *outcome.delivered]
        self.error = "" if outcome.ok else outcome.error_text()
        if not targets:
            self.error = "the channel has no targets"
        if outcome.ok and targets:
            self.status, self.finished_at = self.Status.SENT, finished
        elif last or not targets:
            self.status, self.finished_at = self.Status.FAILED, finished
        else:
            self.status, self.next_attempt_at = self.Status.RETRYING, finished + backoff
        self.save(update_fields=["tries", "delivered", "error", "status", "finished_at", "next_attempt_at"])
        DeliveryAttempt.objects.create(
            delivery=self,
            number=self.tries,
            at=started,
            ok=outcome.ok and bool(targets),
            sent_to=len(outcome.delivered),
            error=self.error,
            duration_ms=(finished - started).total_seconds() * 1000,
        )
        return outcome

    def outcome_text(self) -> str:
        """The delivery's state in words, as the pages and the test button say it."""
        total = len(self.channel.targets or [])
        done = len(self.delivered)
        if self.status == self.Status.SENT:
            return f"Sent to {done} of {total} target{'s' if total != 1 else ''}."
        if self.status == self.Status.FAILED:
            return f"Failed after {self.tries} attempt{'s' if self.tries != 1 else ''}: {self.error}"
        if self.status == self.Status.RETRYING:
            return (
                f"Not sent yet ({done} of {total} targets took it); retrying at "
                f"{self.next_attempt_at:%H:%M:%S} UTC: {self.error}"
            )
        return "Being sent." if self.status == self.Status.SENDING else "Waiting to be sent."


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, whether every target took it, and why not."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    ok = models.BooleanField()
    sent_to = models.PositiveSmallIntegerField(
        default=0, help_text="Targets that took the message this time."
    )
    error = models.TextField(blank=True, default="")
    duration_ms = models.FloatField()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="notifications_attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
