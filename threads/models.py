"""Agent threads: the parent/child tree, the step timeline and the LLM transcript."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from django.db import connection, models
from django.db.models import Case, Count, F, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Greatest, JSONObject, Left, Now, Trunc
from django.urls import reverse
from django.utils import timezone

from missioncontrol import roles, textsearch
from missioncontrol.bulk import execute_unnest, insert_or_update, update_rows, upsert
from missioncontrol.pagination import Keyset
from missioncontrol.stats import Milliseconds, PercentileCont, percentile

STEP_FIELDS = (
    "thread",
    "sequence",
    "timestamp",
    "duration_ms",
    "step_type",
    "description",
    "details",
    "status",
)


# The steps that are tool calls, and a call's tool: its details' `tool`, else the step's text.
TOOL_STEPS = ("tool_call", "tool_result")
CALL_TOOL = Coalesce(KeyTextTransform("tool", "details"), F("description"), output_field=models.CharField())
STATS_PERCENTILES = (0.5, 0.95)
# On SQLite the per-tool percentiles are computed here over at most this many latest calls.
STATS_ROW_LIMIT = 100_000

# A timeline's pages: by sequence, first step first (state() holds the first page).
TIMELINE = Keyset("sequence", default_limit=200, max_limit=1000, ascending=True)

# What a thread keeps of its current step (Thread.current_step), built by the database.
CURRENT_STEP = JSONObject(
    sequence="sequence",
    step_type="step_type",
    description=Left("description", 200),
    status="status",
    timestamp="timestamp",
)


@dataclass(frozen=True, slots=True)
class News:
    """What `record_news` wrote: each thread's team; the server of each thread created ended."""

    teams: dict[str, int | None]
    ended: dict[str, str | None]


def _columns(fields: list[str]) -> list[str]:
    """The quoted columns of Thread `fields` (foreign keys: their id columns)."""
    return [connection.ops.quote_name(Thread._meta.get_field(f).column) for f in fields]  # type: ignore[union-attr]


class ThreadQuerySet(models.QuerySet["Thread"]):
    def visible_to(self, user: Any) -> Self:
        """Rows `user` may see: all for admins; otherwise those of the user's teams.

        Rows of no team are visible to admins only.
        """
        return self.of_teams(roles.team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        """Threads of `teams` (None: every thread, of a team or of none): what a reader
        of those teams sees (a user, visible_to; a directive run, automations.scope)."""
        return self if teams is None else self.filter(team_id__in=teams)

    def roots(self) -> Self:
        return self.filter(parent__isnull=True)

    def active(self) -> Self:
        return self.filter(status__in=Thread.ACTIVE)

    def search(self, text: str) -> Self:
        """Threads whose user input matches the websearch query `text`, or whose id is it."""
        q = textsearch.matches("user_input", text)
        return self if q is None else self.filter(q | Q(id=text.strip()))

    def finished_between(self, since: datetime, until: datetime | None = None) -> Self:
        """Threads that ended (complete, error or cancelled) at or after `since`, before `until`."""
        found = self.filter(status__in=Thread.FINAL, ended_at__isnull=False, ended_at__gte=since)
        return found if until is None else found.filter(ended_at__lt=until)

    def with_duration(self) -> Self:
        """Annotate `duration`: ended minus started, in ms, computed by the database."""
        return self.annotate(duration=Milliseconds(F("ended_at"), F("started_at")))

    def with_kind(self) -> Self:
        """Annotate `kind`: the execution context's `kind` if it names one, else root or child."""
        return self.annotate(
            kind=Coalesce(
                KeyTextTransform("kind", "execution_context"),
                Case(When(parent__isnull=True, then=Value("root")), default=Value("child")),
                output_field=models.CharField(),
            )
        )

    def with_last_activity(self) -> Self:
        """Annotate `last_activity`: the latest of its start and its steps' timestamps."""
        last_step = (
            ExecutionStep.objects.filter(thread=OuterRef("pk"))
            .order_by()
            .values("thread")
            .annotate(at=Max("timestamp"))
            .values("at")
        )
        return self.annotate(
            last_activity=Greatest(
                F("started_at"),
                Coalesce(Subquery(last_step), F("started_at")),
                output_field=models.DateTimeField(),
            )
        )

    def stalled(self, idle_since: datetime) -> Self:
        """Running threads with no step (and no start) since `idle_since`."""
        return (
            self.filter(status=Thread.Status.RUNNING)
            .with_last_activity()
            .filter(last_activity__lt=idle_since)
        )

    def overdue(self, started_before: datetime) -> Self:
        """Threads still running or paused that started before `started_before`."""
        return self.active().filter(started_at__lt=started_before)

    def record_news(
        self,
        started: list[tuple[Any, ...]],
        first_seen: dict[str, datetime],
        team_id: int | None = None,
        ends: Mapping[str, tuple[str, datetime]] | None = None,
        *,
        own_team_only: bool = False,
    ) -> News:
        """Write the threads a batch has news of; their teams, and those created ended.

        `started` holds a row per thread.started: (id, parent_id, mcp_id, user_input,
        execution_context, started_at, session_id), one per thread, inserted or updated. Status is
        not among the updated fields (a thread whose end arrived first keeps its final
        status), nor is team (a thread stays with the team that created it, which may
        not be this batch's).

        The other threads of `first_seen` (id: the batch's earliest time for it) that
        are missing get a placeholder row: a step may arrive before its thread.started
        (agents retry, batches race) and stays attached until thread.started fills it in.

        Any news of a thread means it is not stalled (any more): all are marked updated. Its
        error count and current step are the caller's to count once the batch's steps are
        stored (`recount_steps`), after the team check here has said whose they are.

        `own_team_only`: a thread of another team than `team_id` (no team counts as one)
        is left exactly as it is, and its team is not answered on PostgreSQL (on SQLite
        it is answered as stored); the caller rejects the events for it. Checked in the
        statements that write, so two teams racing to create one id cannot both write it.

        PostgreSQL only, `ends` (id: final status and time): a thread this call creates
        is created ended (an OTLP span is exported once, with its start and its end);
        the others are left to `finish_many`. Two `INSERT ... ON CONFLICT DO UPDATE ...
        RETURNING` statements, rows in id order (concurrent batches lock shared threads
        in the same order).
        """
        ends = ends or {}
        started_ids = {row[0] for row in started}
        placeholders = sorted(tid for tid in first_seen if tid not in started_ids)
        running = Thread.Status.RUNNING
        update = ["parent", "mcp", "user_input", "execution_context", "started_at", "session"]
        fields = ("id", "parent", "mcp", "user_input", "execution_context", "started_at", "session", "team")
        rows = [(*row, team_id) for row in sorted(started, key=lambda r: r[0])]
        rows += [(tid, None, None, "", {}, first_seen[tid], None, team_id) for tid in placeholders]
        table, team = (connection.ops.quote_name(n) for n in (Thread._meta.db_table, "team_id"))
        if connection.vendor != "postgresql":
            assert not ends, "ends on creation need PostgreSQL's RETURNING"
            rows = [(*row, running) for row in rows]
            upsert(
                Thread,
                (*fields, "status"),
                rows[: len(started)],
                unique=["id"],
                update=update,
                where=f"{table}.{team} IS excluded.{team}" if own_team_only else "",
            )
            self.bulk_create(
                [Thread(id=tid, started_at=first_seen[tid], team_id=team_id) for tid in placeholders],
                ignore_conflicts=True,
            )
            found = self.filter(id__in=started_ids | set(placeholders))
            (found.filter(team_id=team_id) if own_team_only else found).update(
                updated_at=Now(), stalled_at=None
            )
            return News(dict(found.values_list("id", "team_id")), {})
        rows = [(*row, *ends.get(row[0], (running, None))) for row in rows]
        news = ("updated_at = now()", "stalled_at = NULL")
        guard = f" WHERE {table}.{team} IS NOT DISTINCT FROM EXCLUDED.{team}" if own_team_only else ""
        returned: list[tuple[Any, ...]] = []
        for chunk, assignments in (
            (rows[: len(started)], [*(f"{c} = EXCLUDED.{c}" for c in _columns(update)), *news]),
            (rows[len(started) :], list(news)),
        ):
            returned += insert_or_update(
                Thread,
                (*fields, "status", "ended_at"),
                chunk,
                unique=["id"],
                set_sql=", ".join(assignments) + guard,
                # xmax is 0 on a row this statement inserted (not on one it updated).
                returning="id, team_id, mcp_id, xmax = 0",
            )
        return News(
            {tid: team for tid, team, _, _ in returned},
            {tid: mcp for tid, _, mcp, created in returned if created and tid in ends},
        )

    def finish_many(self, ends: list[tuple[str, str, datetime]]) -> dict[str, str | None]:
        """PostgreSQL: end threads with final statuses at once; (id, status, at), one per thread.

        Threads already ended are left as they are (Thread.finish). Returns the server
        (mcp_id) of each thread that ended now, by id. One `UPDATE ... FROM unnest`.
        """
        if not ends:
            return {}
        quote = connection.ops.quote_name
        rows = execute_unnest(
            f"UPDATE {quote(Thread._meta.db_table)} AS t SET status = v.status, ended_at = v.at "
            "FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) AS v(id, status, at) "
            "WHERE t.id = v.id AND t.status = ANY(%b::text[]) RETURNING t.id, t.mcp_id",
            [list(column) for column in zip(*sorted(ends), strict=True)] + [[str(s) for s in Thread.ACTIVE]],
        )
        return dict(rows)  # type: ignore[arg-type]

    def with_failures(self, failed: bool = True) -> Self:
        """Threads with at least one failed step (`failed`), or with none."""
        return self.filter(error_count__gt=0) if failed else self.filter(error_count=0)

    @staticmethod
    def _step_counts() -> dict[str, Any]:
        """A thread's error count and current step, as UPDATE values read from its stored steps.

        Each subquery reads one thread's steps through an index: its failures through the
        partial `step_failed_thread`, its current step backwards along (thread, sequence).
        Counting (not adding) keeps them right when a later report of a step changes its
        status, or a report repeats.
        """
        steps = ExecutionStep.objects.filter(thread=OuterRef("pk")).order_by()
        failed = steps.filter(status=ExecutionStep.Status.ERROR).values("thread").annotate(n=Count("*"))
        current = steps.exclude(status=ExecutionStep.Status.PENDING).order_by("-sequence")
        return {
            "error_count": Coalesce(Subquery(failed.values("n")), 0),
            "current_step": Subquery(current.values(snapshot=CURRENT_STEP)[:1]),
        }

    def recount_steps(self, thread_ids: set[str]) -> None:
        """Refresh the error count and the current step of `thread_ids` from their stored steps."""
        if thread_ids:
            self.filter(id__in=thread_ids).update(**self._step_counts())

    def save_fields(self, rows: list[Thread], fields: list[str]) -> None:
        """Save `fields` of stored threads in one statement (the ingest path's bulk update)."""
        update_rows(Thread, rows, fields)


class Thread(models.Model):
    """One agent run on an MCP server, possibly the child of another."""

    class Status(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETE = "complete"
        ERROR = "error"
        CANCELLED = "cancelled"

    ACTIVE = (Status.RUNNING, Status.PAUSED)
    FINAL = (Status.COMPLETE, Status.ERROR, Status.CANCELLED)
    # Allowed moves of the lifecycle; a final status never changes again.
    TRANSITIONS: dict[str, tuple[str, ...]] = {
        Status.RUNNING: (Status.PAUSED, *FINAL),
        Status.PAUSED: (Status.RUNNING, *FINAL),
    }

    id = models.CharField(primary_key=True, max_length=200)
    # No database constraint: a child may arrive before its parent, and the link
    # resolves as soon as the parent does.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="children",
    )
    mcp = models.ForeignKey(
        "mcps.MCPServer", null=True, blank=True, on_delete=models.SET_NULL, related_name="threads"
    )
    # Set by the ingest key or API token that produced the thread; null: admins only.
    team = models.ForeignKey(
        "missioncontrol.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="threads"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    user_input = models.TextField(blank=True, default="")
    execution_context = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    stalled_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the health monitor found it running with no step for too long; "
        "cleared by its next event.",
    )
    memory_usage = models.BigIntegerField(null=True, blank=True, help_text="bytes")
    cpu_usage = models.FloatField(null=True, blank=True, help_text="percent")
    # The client session it ran in, if any (Session); like `parent`, named before it may exist.
    session = models.ForeignKey(
        "threads.Session",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="threads",
    )
    # Kept by the ingest path with its steps (ThreadQuerySet.recount_steps), never set by hand.
    error_count = models.IntegerField(
        db_default=0, default=0, help_text="How many of its steps failed (status error)."
    )
    current_step = models.JSONField(
        null=True,
        blank=True,
        help_text="Its latest step that is not pending: sequence, step_type, description, status, timestamp.",
    )
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    objects = ThreadQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["status", "-started_at"], name="thread_status_started"),
            models.Index(fields=["mcp", "-started_at"], name="thread_mcp_started"),
            models.Index(fields=["-started_at"], name="thread_started"),
            models.Index(fields=["session", "-started_at"], name="thread_session_started"),
        ]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("thread-page", args=[self.id])  # the Thread Inspector

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def duration_ms(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, ())

    def finish(self, status: str, at: datetime) -> bool:
        """End the thread with a final `status`; False (and no change) if it already ended."""
        if status not in self.FINAL:
            raise ValueError(f"{status!r} is not a final status")
        if not self.can_move_to(status):
            return False
        self.status = status
        self.ended_at = at
        return True

    def record_usage(self, memory_usage: int | None, cpu_usage: float | None) -> bool:
        changed = False
        if memory_usage is not None and memory_usage != self.memory_usage:
            self.memory_usage, changed = memory_usage, True
        if cpu_usage is not None and cpu_usage != self.cpu_usage:
            self.cpu_usage, changed = cpu_usage, True
        return changed

    @property
    def step_now(self) -> dict[str, Any] | None:
        """The step it is in now, while it runs or pauses (its `current_step`); None once ended."""
        step = self.current_step
        if not step or self.is_final:
            return None
        when = step.get("timestamp")
        if isinstance(when, str):  # as the database wrote it: ISO on PostgreSQL, "Y-m-d H:M:S" on SQLite
            parsed = datetime.fromisoformat(when)
            when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()
        return {**step, "timestamp": when}

    def summary(self) -> dict[str, Any]:
        """The thread's own fields as the API and WebSocket show them."""
        return {
            "id": self.id,
            "parent_id": self.parent_id,
            "mcp_id": self.mcp_id,
            "session_id": self.session_id,
            "status": self.status,
            "error_count": self.error_count,
            "current_step": self.step_now,
            "user_input": self.user_input,
            "execution_context": self.execution_context,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_ms": self.duration_ms,
            "stalled_at": self.stalled_at.isoformat() if self.stalled_at else None,
            "memory_usage": self.memory_usage,
            "cpu_usage": self.cpu_usage,
        }

    def state(self, user: Any = None) -> dict[str, Any]:
        """Details, children, the timeline's first page and the transcript: what a new
        inspector needs first.

        The timeline stops after TIMELINE.default_limit steps: `timeline_next` is the
        cursor of the rest (`GET /api/threads/<id>/timeline?cursor=...`), `step_count`
        says how many there are. With `user`, only the children that user may see are named.
        """
        children = self.children.all() if user is None else self.children.visible_to(user)
        steps, following, _ = TIMELINE.page(self.steps.all(), TIMELINE.default_limit)
        return {
            "thread": self.summary(),
            "children": list(children.order_by("started_at").values_list("id", flat=True)),
            "timeline": [step.as_event() for step in steps],
            "timeline_next": following,
            "step_count": len(steps) if following is None else self.steps.count(),
            "transcript": [message.as_event() for message in self.messages.all()],
        }


class SessionQuerySet(models.QuerySet["Session"]):
    def visible_to(self, user: Any) -> Self:
        """Sessions `user` may see: all for admins; otherwise those of the user's teams."""
        teams = roles.team_scope(user)
        return self if teams is None else self.filter(team_id__in=teams)

    def with_counts(self, threads: ThreadQuerySet) -> Self:
        """Annotate `thread_count` and `failed_steps` (over those of `threads`, the visible ones)."""
        threads = threads.filter(session=OuterRef("pk")).order_by().values("session")
        return self.annotate(
            thread_count=Coalesce(Subquery(threads.annotate(n=Count("*")).values("n")), 0),
            failed_steps=Coalesce(Subquery(threads.annotate(n=models.Sum("error_count")).values("n")), 0),
        )

    def record(self, rows: list[tuple[Any, ...]]) -> None:
        """Store the sessions threads named: (id, team, via, principal, client, first seen,
        last seen).

        A new session starts when first seen; a known one keeps its team and who it is,
        and is seen again (`last_seen_at` moves forward, never back). One statement.
        """
        upsert(
            Session,
            ("id", "team", "via", "principal", "client", "started_at", "last_seen_at"),
            sorted(rows, key=lambda r: r[0]),  # concurrent batches lock them in one order
            unique=["id"],
            update=[],
            latest=["last_seen_at"],
        )

    def end(self, ends: Mapping[str, datetime], team_id: int | None) -> list[str]:
        """End sessions (id: when) still open; a team's events end only its own. Their ids."""
        found = self.filter(id__in=ends.keys(), ended_at__isnull=True)
        if team_id is not None:
            found = found.filter(team_id=team_id)
        sessions = list(found)
        for session in sessions:
            session.ended_at = max(ends[session.id], session.started_at)
        self.bulk_update(sessions, ["ended_at"])
        return [session.id for session in sessions]


class Session(models.Model):
    """A client's session (an MCP client on /mcp or mcp_proxy, or any agent that names one):
    the threads of its runs grouped, as Langfuse groups traces.

    Written by the ingest path from the `session_id` its threads' `thread.started` name
    (the /mcp recorder names the session of each call it records, mcps/endpoint/recorder.py)
    and ended by a `session.ended` event. Who it is (`via`, `principal`, `client`) comes
    from the first thread's execution context; its team is that of whoever reported it.
    A session is not a thread: it has no steps of its own, and never stays "running".
    """

    id = models.CharField(primary_key=True, max_length=200)
    team = models.ForeignKey(
        "missioncontrol.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    via = models.CharField(max_length=100, blank=True, default="", help_text="/mcp, mcp_proxy, REST, ...")
    principal = models.CharField(max_length=200, blank=True, default="", help_text="Who called.")
    client = models.JSONField(default=dict, blank=True, help_text="The client's name and version.")
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="session_started")]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("session-page", args=[self.id])

    def summary(self) -> dict[str, Any]:
        """The session as the API shows it (counts when annotated by `with_counts`)."""
        return {
            "id": self.id,
            "via": self.via,
            "principal": self.principal,
            "client": self.client,
            "started_at": self.started_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "thread_count": getattr(self, "thread_count", None),
            "error_count": getattr(self, "failed_steps", None),
        }


class ExecutionStepQuerySet(models.QuerySet["ExecutionStep"]):
    def visible_to(self, user: Any) -> Self:
        """Steps of the threads `user` may see (ThreadQuerySet.visible_to)."""
        return self.of_teams(roles.team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        return self if teams is None else self.filter(thread__team_id__in=teams)

    def search(self, text: str) -> Self:
        """Steps whose description matches the websearch query `text`."""
        q = textsearch.matches("description", text)
        return self if q is None else self.filter(q)

    def calls(self, thread_ids: list[str]) -> list[dict[str, Any]]:
        """The tool calls of `thread_ids`, latest first, each with its outcome.

        A call's result is the tool_result step after it (before the next call), as the
        /mcp recorder reports them; a call reported without one (an SDK step, an OTLP
        span, a directive's tool step) carries its own status. Failed either way: error.
        """
        rows = self.filter(
            thread_id__in=thread_ids,
            step_type__in=(ExecutionStep.StepType.TOOL_CALL, ExecutionStep.StepType.TOOL_RESULT),
        ).order_by("thread_id", "sequence")
        calls: list[dict[str, Any]] = []
        open_call: dict[str, Any] | None = None
        for step in rows:
            if step.step_type == ExecutionStep.StepType.TOOL_CALL:
                open_call = {
                    "thread_id": step.thread_id,
                    "sequence": step.sequence,
                    "timestamp": step.timestamp,
                    "tool": step.details.get("tool") or step.description,
                    "mcp_id": step.details.get("mcp_id"),
                    "status": step.status,
                    "duration_ms": step.duration_ms,
                }
                calls.append(open_call)
            elif open_call is not None and open_call["thread_id"] == step.thread_id:
                if open_call["status"] != ExecutionStep.Status.ERROR:
                    open_call["status"] = step.status
                open_call["duration_ms"] = step.duration_ms
                open_call = None
        return sorted(calls, key=lambda c: c["timestamp"], reverse=True)

    def tool_calls_of(self, mcp_id: str, since: datetime) -> Self:
        """The calls to server `mcp_id` since `since`: one step per call, the one that
        carries its duration (a routed call's tool_result, an SDK's or a span's tool_call),
        with `tool` annotated. A failed call is a step in error."""
        server = Q(details__mcp_id=mcp_id) | Q(details__mcp_id__isnull=True, thread__mcp_id=mcp_id)
        return (
            self.filter(server, step_type__in=TOOL_STEPS, timestamp__gte=since, duration_ms__isnull=False)
            .order_by()
            .annotate(tool=CALL_TOOL)
        )

    def tool_stats(self, mcp_id: str, since: datetime) -> list[dict[str, Any]]:
        """Per tool of server `mcp_id` since `since`: calls, failures, p50 and p95 latency (ms),
        the last call's time and the last failure's text; busiest tool first.

        PostgreSQL aggregates in the database (percentile_cont); SQLite reads at most
        STATS_ROW_LIMIT of the latest calls and interpolates the same way here.
        """
        calls = self.tool_calls_of(mcp_id, since)
        failed = Q(status=ExecutionStep.Status.ERROR)
        rows: dict[str, dict[str, Any]] = {}
        if connection.vendor == "postgresql":
            found = calls.values("tool").annotate(
                calls=Count("*"),
                failures=Count("pk", filter=failed),
                points=PercentileCont(F("duration_ms"), STATS_PERCENTILES),
                last_call=Max("timestamp"),
            )
            for row in found:
                p50, p95 = row["points"]
                rows[row["tool"]] = {
                    "tool": row["tool"],
                    "calls": row["calls"],
                    "failures": row["failures"],
                    "p50_ms": round(p50, 3),
                    "p95_ms": round(p95, 3),
                    "last_call": row["last_call"],
                }
        else:
            durations: dict[str, list[float]] = {}
            latest = calls.order_by("-timestamp").values_list("tool", "duration_ms", "status", "timestamp")
            for tool, duration, status, at in latest[:STATS_ROW_LIMIT]:
                row = rows.setdefault(tool, {"tool": tool, "calls": 0, "failures": 0, "last_call": at})
                row["calls"] += 1
                row["failures"] += status == ExecutionStep.Status.ERROR
                durations.setdefault(tool, []).append(float(duration))
            for tool, values in durations.items():
                values.sort()
                p50, p95 = (percentile(values, p) for p in STATS_PERCENTILES)
                rows[tool].update(p50_ms=round(p50, 3), p95_ms=round(p95, 3))
        for tool, error in self._last_errors(calls.filter(failed)).items():
            if tool in rows:
                rows[tool]["last_error"] = error
        for row in rows.values():
            row.setdefault("last_error", None)
            row["last_call"] = row["last_call"].isoformat()
        return sorted(rows.values(), key=lambda r: (-r["calls"], r["tool"]))

    @staticmethod
    def _last_errors(failures: ExecutionStepQuerySet) -> dict[str, dict[str, Any]]:
        """The latest failure of each tool among `failures`: its time, text and thread."""
        text = Coalesce(
            KeyTextTransform("error", "details"), F("description"), output_field=models.TextField()
        )
        newest = failures.annotate(text=text).order_by("tool", "-timestamp")
        if connection.vendor == "postgresql":
            newest = newest.distinct("tool")
        out: dict[str, dict[str, Any]] = {}
        for tool, message, at, thread_id in newest.values_list("tool", "text", "timestamp", "thread_id")[
            :STATS_ROW_LIMIT
        ]:
            if tool not in out:
                out[tool] = {"at": at.isoformat(), "message": message, "thread_id": thread_id}
        return out

    def call_series(self, mcp_id: str, since: datetime, until: datetime, bucket: str) -> dict[str, list[Any]]:
        """Calls and failures to server `mcp_id` per `bucket` ("minute" or "hour") from
        `since` to `until`, every bucket present: {"t": [unix seconds], "calls", "errors"}."""
        step = timedelta(minutes=1) if bucket == "minute" else timedelta(hours=1)
        found = (
            self.tool_calls_of(mcp_id, since)
            .annotate(bucket=Trunc("timestamp", bucket, tzinfo=UTC))
            .values("bucket")
            .annotate(calls=Count("*"), errors=Count("pk", filter=Q(status=ExecutionStep.Status.ERROR)))
        )
        counts = {row["bucket"]: (row["calls"], row["errors"]) for row in found}
        start = since.astimezone(UTC).replace(second=0, microsecond=0)
        if bucket == "hour":
            start = start.replace(minute=0)
        series: dict[str, list[Any]] = {"t": [], "calls": [], "errors": []}
        at = start
        while at <= until:
            calls, errors = counts.get(at, (0, 0))
            series["t"].append(int(at.timestamp()))
            series["calls"].append(calls)
            series["errors"].append(errors)
            at += step
        return series

    def record(self, rows: list[tuple[Any, ...]]) -> None:
        """Upsert steps by (thread, sequence): a later report of a step updates it.

        `rows` hold the values of STEP_FIELDS, one per (thread, sequence).
        """
        upsert(ExecutionStep, STEP_FIELDS, rows, unique=["thread", "sequence"], update=STEP_FIELDS[2:])


class ExecutionStep(models.Model):
    """One step of a thread's timeline, placed by its sequence number."""

    class StepType(models.TextChoices):
        DIRECTIVE = "directive"
        SCRIPT = "script"
        TOOL_CALL = "tool_call"
        TOOL_RESULT = "tool_result"
        CHECK_PERMISSION = "check_permission"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETE = "complete"
        ERROR = "error"

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="steps")
    sequence = models.IntegerField()
    timestamp = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    step_type = models.CharField(max_length=32, choices=StepType.choices)
    description = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)

    objects = ExecutionStepQuerySet.as_manager()

    class Meta:
        ordering = ["thread", "sequence"]
        constraints = [models.UniqueConstraint(fields=["thread", "sequence"], name="step_thread_sequence")]
        # A thread's failed steps, counted with every batch (ThreadQuerySet.recount_steps):
        # through this small index the count reads the failures alone, however long the thread.
        indexes = [models.Index(fields=["thread"], condition=Q(status="error"), name="step_failed_thread")]

    def __str__(self) -> str:
        return f"{self.thread_id}#{self.sequence} {self.step_type}"

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "thread.step",
            "thread_id": self.thread_id,
            "sequence": self.sequence,
            "timestamp": self.timestamp.isoformat(),
            "step_type": self.step_type,
            "description": self.description,
            "details": self.details,
            "status": self.status,
            "duration_ms": self.duration_ms,
        }


class LLMMessageQuerySet(models.QuerySet["LLMMessage"]):
    def visible_to(self, user: Any) -> Self:
        """Messages of the threads `user` may see (ThreadQuerySet.visible_to)."""
        return self.of_teams(roles.team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        return self if teams is None else self.filter(thread__team_id__in=teams)

    def search(self, text: str) -> Self:
        """Transcript messages whose content matches the websearch query `text`."""
        q = textsearch.matches("content", text)
        return self if q is None else self.filter(q)


class LLMMessage(models.Model):
    """One message of a thread's LLM transcript; its id is the event id."""

    class Role(models.TextChoices):
        USER = "user"
        AGENT = "agent"
        TOOL = "tool"
        DIRECTIVE = "directive"
        SYSTEM = "system"

    id = models.CharField(primary_key=True, max_length=200)
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    timestamp = models.DateTimeField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    objects = LLMMessageQuerySet.as_manager()

    class Meta:
        ordering = ["thread", "timestamp", "created_at"]
        indexes = [models.Index(fields=["thread", "timestamp"], name="message_thread_time")]
        verbose_name = "LLM message"

    def __str__(self) -> str:
        return f"{self.thread_id} {self.role}: {self.content[:40]}"

    def as_event(self) -> dict[str, Any]:
        return {
            "type": "thread.message",
            "id": self.id,
            "thread_id": self.thread_id,
            "role": self.role,
            "content": self.content,
            "timestamp": self.timestamp.isoformat(),
            "metadata": self.metadata,
        }


class ThreadEventQuerySet(models.QuerySet["ThreadEvent"]):
    def visible_to(self, user: Any) -> Self:
        """Ledger entries of the threads `user` may see (ThreadQuerySet.visible_to)."""
        teams = roles.team_scope(user)
        if teams is None:
            return self
        return self.filter(thread_id__in=Thread.objects.of_teams(teams).values("id"))


class ThreadEvent(models.Model):
    """Ledger of thread.started/step/ended event ids, so a repeated event applies once."""

    id = models.CharField(primary_key=True, max_length=200)
    type = models.CharField(max_length=32)
    thread_id = models.CharField(max_length=200, db_index=True)
    received_at = models.DateTimeField(db_default=Now())

    objects = ThreadEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
