"""Directives (YAML workflows over scripts and tools) and the knowledge they produce."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from automations import definition
from automations.definition import ToolRef
from missioncontrol import roles
from missioncontrol.models import Team


class DirectiveQuerySet(models.QuerySet["Directive"]):
    def upsert_from_yaml(self, text: str, *, system: bool = False) -> Directive:
        """Create or replace the directive that `text` defines (keyed by its name).

        A user's directive may not replace one shipped with Mission Control: the system
        loader would overwrite it again on its next run.
        """
        parsed = definition.parse(text)
        name = parsed["name"]
        if not system and self.filter(name=name, system=True).exists():
            raise ValueError(f"{name!r} is a system directive; give yours another name")
        directive = self.filter(name=name).first() or Directive(name=name)
        directive.apply(text, parsed)
        directive.system = system
        directive.save()
        return directive

    def enabled(self) -> Self:
        return self.filter(enabled=True)

    def checked(self, text: str, current: Directive | None = None) -> dict[str, Any]:
        """`text` parsed, for a user saving it (API, admin); ValidationError naming the problem.

        Beyond the format: the name is free (or `current`'s own), it is not a system
        directive's, and every step stays within the directive's declared permissions
        ({step path: [reason]}).
        """
        from automations import bounds

        try:
            parsed = definition.parse(text)
        except ValueError as exc:
            raise ValidationError({"source": [str(exc)]}) from None
        name = parsed["name"]
        taken = self.filter(name=name).exclude(pk=current.pk if current else None).first()
        if taken is not None:
            reason = "is a system directive; give yours another name" if taken.system else "already exists"
            raise ValidationError({"source": [f"a directive named {name!r} {reason}"]})
        problems = bounds.problems(parsed)
        if problems:
            raise ValidationError(problems)
        return parsed


class Directive(models.Model):
    """A named YAML workflow of script, tool, foreach and conditional steps."""

    global_because = "directives are definitions every team shares; their runs are scoped"

    name = models.SlugField(max_length=100, unique=True)
    version = models.CharField(max_length=50, blank=True)
    description = models.TextField(blank=True)
    source = models.TextField(help_text="The directive's YAML.")
    definition = models.JSONField(default=dict, blank=True, help_text="The YAML, parsed.")
    system = models.BooleanField(default=False, help_text="Shipped with Mission Control.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DirectiveQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("directive-page", args=[self.name])

    def apply(self, text: str, parsed: dict[str, Any] | None = None) -> None:
        """Set source, definition and the fields read from it; ValueError if `text` is invalid."""
        parsed = definition.parse(text) if parsed is None else parsed
        self.source = text
        self.definition = parsed
        self.name = parsed["name"]
        self.version = str(parsed.get("version") or "")[:50]
        self.description = str(parsed.get("description") or "")

    def clean(self) -> None:
        # The admin edits `source`; everything else follows from it.
        try:
            parsed = Directive.objects.checked(self.source, self if self.pk else None)
        except ValidationError as exc:
            raise ValidationError(
                {
                    "source": [
                        f"{k}: {m}" if k != "source" else m for k, ms in exc.message_dict.items() for m in ms
                    ]
                }
            ) from None
        self.apply(self.source, parsed)

    def summary(self) -> dict[str, Any]:
        """The directive as the API lists it."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "system": self.system,
            "enabled": self.enabled,
            "permissions": self.definition.get("permissions") or [],
            "inputs": self.definition.get("inputs") or {},
            "scripts": self.script_names(),
            "tools": [f"{r.server}/{r.tool}" for r in self.tool_refs()],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def steps(self) -> Iterator[dict[str, Any]]:
        """Every step, nested ones included, depth first."""
        return definition.walk(self.definition.get("steps") or [])

    def script_names(self) -> list[str]:
        """The scripts the directive runs, in order of first appearance."""
        names = (definition.script_name(step) for step in self.steps())
        return list(dict.fromkeys(n for n in names if n))

    def tool_refs(self) -> list[ToolRef]:
        """The (server, tool) pairs the directive calls, in order of first appearance."""
        refs = (definition.tool_ref(step) for step in self.steps())
        return list(dict.fromkeys(r for r in refs if r))


def _team_field(help_text: str) -> Any:
    """The team a row of a run belongs to (automations.scope); kept when the team goes."""
    return models.ForeignKey(
        "missioncontrol.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=help_text,
    )


# `[[slug]]` names another entry explicitly.
WIKI_LINK = re.compile(r"\[\[\s*([^\[\]]+?)\s*\]\]")


class KnowledgeEntryQuerySet(models.QuerySet["KnowledgeEntry"]):
    def visible_to(self, user: Any) -> Self:
        """Entries `user` may see: all for admins; otherwise the shared ones and those
        computed from its teams' rows (automations.scope)."""
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(Q(shared=True) | Q(team_id__in=teams))

    def slug_for(self, key: str, *, shared: bool = False) -> str:
        """The slug the current run (automations.scope) stores the entry keyed `key` under:
        one per team, so each team's entry is computed from its own rows alone."""
        from automations.scope import current

        scope = current()
        if shared or scope.everything and scope.team is None:
            return slugify(key)[:300]
        if scope.team is not None:
            suffix = "team-" + (
                Team.objects.filter(pk=scope.team).values_list("slug", flat=True).first() or ""
            )
        else:
            suffix = "teams-" + "-".join(str(t) for t in sorted(scope.teams or ()))
        return slugify(f"{key} {suffix}")[:300]

    def record(
        self,
        slug: str,
        *,
        title: str,
        category: str,
        content: str,
        confidence: float,
        source_directive: str | None = None,
        shared: bool = False,
    ) -> tuple[KnowledgeEntry, bool]:
        """Create or update the entry keyed by `slug`: a re-run refreshes it, never duplicates it.

        The entry belongs to the current run's team (automations.scope), under a slug of
        that team's (`slug_for`); `shared` entries are about what every user sees anyway
        (shared servers) and are shown to all. `source_directive` is a directive's name;
        an unknown name leaves the link empty. Answers (entry, created).
        """
        from automations.scope import current

        directive = Directive.objects.filter(name=source_directive).first() if source_directive else None
        return self.update_or_create(
            slug=self.slug_for(slug, shared=shared),
            defaults={
                "title": title[:300],
                "category": category,
                "content": content,
                "confidence": min(1.0, max(0.0, float(confidence))),
                "source_directive": directive,
                "team_id": None if shared else current().team,
                "shared": shared,
            },
        )


class KnowledgeEntry(models.Model):
    """Something Mission Control learned: a pattern, an optimization, an alert, a practice."""

    class Category(models.TextChoices):
        PATTERN = "pattern"
        OPTIMIZATION = "optimization"
        ALERT = "alert"
        BEST_PRACTICE = "best_practice", "Best practice"

    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=300, unique=True, blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.PATTERN)
    content = models.TextField(blank=True, help_text="Mention another entry as [[its-slug]] or by title.")
    confidence = models.FloatField(default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)])
    source_directive = models.ForeignKey(
        Directive,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="knowledge",
        help_text="The directive that produced this entry.",
    )
    team = _team_field(
        "The team whose rows it was computed from: its members see it. None: admins only, unless shared."
    )
    shared = models.BooleanField(
        default=False,
        help_text="Shown to every user: for what every user may see anyway (written by hand, "
        "about shared servers). Never tick it for an entry computed from a team's rows.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = KnowledgeEntryQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "knowledge entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1), name="knowledge_confidence_0_1"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.title)[:300]
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("knowledge-page", args=[self.slug])

    def summary(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "category": self.category,
            "content": self.content,
            "confidence": self.confidence,
            "source_directive": self.source_directive.name if self.source_directive_id else None,
            "team": self.team.slug if self.team_id else None,
            "shared": self.shared,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @staticmethod
    def links(entries: Iterable[KnowledgeEntry]) -> list[tuple[str, str]]:
        """(from slug, to slug) for each entry that mentions another among `entries`.

        A mention is `[[slug]]`, or the other entry's exact title as a whole phrase
        (case-sensitive, not inside a longer word). An entry never links to itself.
        """
        entries = list(entries)
        slugs = {e.slug for e in entries}
        titles = [(e.slug, re.compile(rf"(?<!\w){re.escape(e.title)}(?!\w)")) for e in entries if e.title]
        links: list[tuple[str, str]] = []
        for entry in entries:
            targets = {s for s in WIKI_LINK.findall(entry.content) if s in slugs}
            targets |= {slug for slug, title in titles if title.search(entry.content)}
            links += [(entry.slug, target) for target in sorted(targets - {entry.slug})]
        return links


class DirectiveExecutionQuerySet(models.QuerySet["DirectiveExecution"]):
    def unfinished(self) -> Self:
        return self.filter(status__in=DirectiveExecution.UNFINISHED)

    def running_for(self, directive: Directive) -> int:
        return self.filter(directive=directive, status=DirectiveExecution.Status.RUNNING).count()

    def visible_to(self, user: Any) -> Self:
        """Runs `user` may see (a role that reads runs): all for admins; otherwise the
        runs of its teams and those it started (automations.scope). System runs read
        every team's rows: admins only."""
        if not roles.can(user, "automations.view_directiveexecution"):
            return self.none()
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(Q(team_id__in=teams) | Q(started_by_id=user.pk))


class DirectiveExecution(models.Model):
    """One run of a directive: who triggered it, with what, how it went."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"
        ALERT = "alert"
        EVENT = "event"

    UNFINISHED = (Status.PENDING, Status.RUNNING)
    FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    directive = models.ForeignKey(
        Directive, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    # Kept when the directive is deleted, so the history still reads.
    directive_name = models.CharField(max_length=100, db_index=True)
    automation = models.ForeignKey(
        "Automation", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    triggered_by = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    # What fired it: the event or alert, the scheduled minute, the user.
    trigger_info = models.JSONField(default=dict, blank=True)
    # Fires once per event or scheduled minute: unique per automation (see Meta).
    trigger_key = models.CharField(max_length=200, blank=True, default="")
    inputs = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True, default="")
    depth = models.PositiveSmallIntegerField(default=0, help_text="How many runs led to this one.")
    # Whom it acts for (automations.scope): set by engine.submit, whoever starts it.
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who started it; none: a system run (the scheduler, a trigger, the command line).",
    )
    team = _team_field("Whose its output is: that team's members see it; none: admins and its starter.")
    read_teams = models.JSONField(
        null=True,
        blank=True,
        help_text="The ids of the teams whose rows it reads; null: every team's (a system run's).",
    )
    thread_id = models.CharField(max_length=200, blank=True, default="", db_index=True)
    steps_run = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # The Celery task (message) running it: a redelivery of that message after its worker
    # died finds it here, and the sweep asks the workers whether it still runs.
    task_id = models.CharField(max_length=255, blank=True, default="")
    resumes = models.PositiveSmallIntegerField(
        default=0, help_text="How often it was taken up again after its worker was lost."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    objects = DirectiveExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "trigger_key"],
                condition=~Q(trigger_key=""),
                name="execution_fires_once_per_trigger",
            )
        ]

    def __str__(self) -> str:
        return f"{self.directive_name} #{self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "directive": self.directive_name,
            "automation": self.automation_id,
            "triggered_by": self.triggered_by,
            "trigger_info": self.trigger_info,
            "inputs": self.inputs,
            "result": self.result,
            "status": self.status,
            "error": self.error,
            "depth": self.depth,
            "started_by": self.started_by.get_username() if self.started_by_id else None,
            "team": self.team.slug if self.team_id else None,
            "thread_id": self.thread_id or None,
            "steps_run": self.steps_run,
            "cancel_requested": self.cancel_requested,
            "resumes": self.resumes,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "duration_ms": self.duration_ms,
        }

    def request_cancel(self) -> bool:
        """Ask a pending or running execution to stop; False if it had already finished.

        A pending one is cancelled at once; a running one stops before its next step
        (or, in the process running it, at once: see engine.cancel_local).
        """
        now = timezone.now()
        if DirectiveExecution.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            status=self.Status.CANCELLED, cancel_requested=True, error="cancelled", completed_at=now
        ):
            self.refresh_from_db()
            return True
        updated = DirectiveExecution.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            cancel_requested=True
        )
        self.refresh_from_db()
        return bool(updated)


class StepRunQuerySet(models.QuerySet["StepRun"]):
    def visible_to(self, user: Any) -> Self:
        """Steps of the runs `user` may see (DirectiveExecutionQuerySet.visible_to)."""
        return self.filter(execution__in=DirectiveExecution.objects.visible_to(user))


class StepRun(models.Model):
    """One step of one execution: where it sits in the directive, what went in and out."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        SKIPPED = "skipped"
        CANCELLED = "cancelled"

    execution = models.ForeignKey(DirectiveExecution, on_delete=models.CASCADE, related_name="step_runs")
    sequence = models.PositiveIntegerField()
    path = models.CharField(max_length=300, help_text="steps[1].steps[0]#3: item 3 of a foreach")
    name = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(null=True, blank=True)

    objects = StepRunQuerySet.as_manager()

    class Meta:
        ordering = ["execution", "sequence"]
        constraints = [models.UniqueConstraint(fields=["execution", "sequence"], name="steprun_sequence")]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.sequence} {self.path}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "path": self.path,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "duration_ms": self.duration_ms,
        }


# Alerts published on `global`: escalations (ingest), and what the system directives'
# scripts raise (anomalies, stalled or timed-out threads, servers that would not heal).
ALERT_TYPES = (
    "permission.escalation",
    "anomaly.detected",
    "thread.stalled",
    "thread.timed_out",
    "mcp.escalated",
)


def event_field(event: dict[str, Any], key: str) -> Any:
    """An event's field; Mission Control's own alerts (automations.events) keep theirs in `details`."""
    if key in event:
        return event[key]
    details = event.get("details")
    return details.get(key) if isinstance(details, dict) else None


class AutomationQuerySet(models.QuerySet["Automation"]):
    def enabled(self) -> Self:
        return self.filter(enabled=True, directive__enabled=True)


class Automation(models.Model):
    """Run a directive on a cron schedule, on an alert, or on an event of a given type."""

    global_because = "automations are shared triggers; the runs they start are system runs"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        ALERT = "alert"
        EVENT = "event"

    name = models.CharField(max_length=200, unique=True)
    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="automations")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    schedule = models.CharField(max_length=100, blank=True, default="", help_text="Cron, e.g. '0 * * * *'.")
    event_type = models.CharField(
        max_length=100, blank=True, default="", help_text="e.g. thread.ended, mcp.status, anomaly.detected"
    )
    filters = models.JSONField(
        default=dict, blank=True, help_text="Field equality, e.g. {'status': 'error'}."
    )
    inputs = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True, db_index=True)
    last_executed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AutomationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def problems(self) -> dict[str, list[str]]:
        """{field: [reason]} for what does not hold; empty when the automation is sound."""
        from croniter import croniter

        problems: dict[str, list[str]] = {}
        if self.trigger == self.Trigger.SCHEDULE:
            if not self.schedule:
                problems["schedule"] = ["a schedule automation needs a cron expression, e.g. '0 * * * *'"]
            elif len(self.schedule.split()) != 5 or not croniter.is_valid(self.schedule):
                problems["schedule"] = [
                    f"{self.schedule!r} is not a cron expression (five fields: m h dom mon dow)"
                ]
        elif self.trigger == self.Trigger.ALERT:
            if self.event_type and self.event_type not in ALERT_TYPES:
                problems["event_type"] = [f"an alert is one of {', '.join(ALERT_TYPES)}"]
        elif self.trigger == self.Trigger.EVENT and not self.event_type:
            problems["event_type"] = ["an event automation needs an event type, e.g. thread.ended"]
        if not isinstance(self.filters, dict) or not all(
            isinstance(v, str | int | float | bool) or v is None for v in self.filters.values()
        ):
            problems["filters"] = ["expected a mapping of field to value, e.g. {'status': 'error'}"]
        if not isinstance(self.inputs, dict):
            problems["inputs"] = ["expected a mapping of input to value"]
        return problems

    def clean(self) -> None:
        problems = self.problems()
        if problems:
            raise ValidationError(problems)

    def next_runs(self, count: int = 5, after: datetime | None = None) -> list[datetime]:
        """The next `count` times a schedule automation fires (UTC); [] for other triggers."""
        from croniter import croniter

        if self.trigger != self.Trigger.SCHEDULE or self.problems().get("schedule"):
            return []
        it = croniter(self.schedule, after or timezone.now())
        return [it.get_next(datetime) for _ in range(count)]

    def due_at(self, now: datetime) -> datetime | None:
        """The scheduled minute this automation is due for at `now`, if it has not fired for it."""
        from croniter import croniter

        if self.trigger != self.Trigger.SCHEDULE or self.problems().get("schedule"):
            return None
        minute = now.replace(second=0, microsecond=0)
        # The latest scheduled minute at or before `now` (get_prev is exclusive of its start).
        latest: datetime = croniter(self.schedule, minute + timedelta(minutes=1)).get_prev(datetime)
        if self.last_executed_at is None:
            # Never fired: only a scheduled minute that came after it was made, so one made
            # at 10:00:30 with `*/15` first runs at 10:15, not at once for 10:00.
            return latest if latest >= self.created_at else None
        if latest <= self.last_executed_at.replace(second=0, microsecond=0):
            return None  # fired for this minute (or a later one) already
        return latest

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether an event (or alert) of the live stream fires this automation."""
        wanted = self.event_type or (None if self.trigger == self.Trigger.EVENT else "")
        if wanted and event.get("type") != wanted:
            return False
        if not wanted and event.get("type") not in ALERT_TYPES:
            return False
        return all(event_field(event, key) == value for key, value in self.filters.items())
