"""The directive engine: submit a run, then execute its steps under the runaway guards.

`submit()` is the one door every run goes through (API, admin, command, automations,
the health monitor): it checks the inputs, creates the DirectiveExecution and hands it
to Celery. `execute()` (the Celery task's body) runs it: each step is recorded as a
StepRun and as a step of the run's Thread (on the `mission-control` server, through
the ingest pipeline, so the run is live on `thread:{id}` like any agent's), each
permission check as a PermissionEvent, and status changes as `directive.execution`
events on `global` and the thread's channel.

Guards (settings DIRECTIVE_*, `automations:` in mission_control.yml): steps per run,
items per foreach, per-step and per-run timeouts, running executions per directive,
depth of runs triggered by runs' own events, and cancel. A step that overstays is
stopped by a watchdog raising StepTimeout inside it (a step blocked in C code stops as
soon as it returns to Python; a tool call is bounded by its own gateway timeout).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from automations import bounds, definition, scripts, templating
from automations.inputs import coerce, output_problem
from automations.models import Automation, Directive, DirectiveExecution, StepRun
from automations.scope import Scope, current_run, reading
from mcps.endpoint.recorder import Call, call_thread
from mcps.endpoint.recorder import Session as CallSession
from mcps.models import AGGREGATE_ID
from missioncontrol.ingest.events import Source
from missioncontrol.ingest.pipeline import ingest
from missioncontrol.jsontext import dumps, loads
from missioncontrol.live import Outbox, encode
from threads.models import ExecutionStep

logger = logging.getLogger(__name__)

Status = DirectiveExecution.Status
EXECUTION_EVENT = "directive.execution"
# The Celery task that runs one execution (automations.tasks), looked up by its name.
RUN_EXECUTION = "automations.run_execution"
_TOP_LEVEL = re.compile(r"steps\[(\d+)\]")


class Stop(BaseException):  # noqa: N818 (raised into running steps: not an Exception, so no script swallows it)
    """The run must stop now; the message says why."""


class StepTimeout(Stop):
    pass


class Cancelled(Stop):
    pass


class StepFailed(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class RunFailed(Exception):
    """A guard ends the whole run (not just a step)."""


# ---------------------------------------------------------------- submitting a run


def submit(
    directive: Directive,
    inputs: Mapping[str, Any] | None = None,
    *,
    acting_for: Scope,
    started_by: Any = None,
    triggered_by: str = DirectiveExecution.Trigger.MANUAL,
    trigger_info: dict[str, Any] | None = None,
    automation: Automation | None = None,
    trigger_key: str = "",
    depth: int = 0,
    wait: bool = False,
    on_step: Callable[[StepRun], None] | None = None,
) -> DirectiveExecution:
    """Create the execution and start it (InputError for bad inputs, before anything is stored).

    Every directive run starts here, whatever triggered it, and says whom it acts for
    (automations.scope): `acting_for` is what it reads and whose its output is
    (scope.SYSTEM for the scheduler's), `started_by` the user who asked, if any. `wait`
    runs it in this thread and returns it finished (the command line), calling
    `on_step` as each step starts and ends.
    """
    values = coerce(directive.definition.get("inputs") or {}, inputs)
    with transaction.atomic():  # a repeated trigger_key fails alone, not the caller's transaction
        execution = DirectiveExecution.objects.create(
            directive=directive,
            directive_name=directive.name,
            automation=automation,
            triggered_by=triggered_by,
            trigger_info=trigger_info or {},
            trigger_key=trigger_key,
            inputs=values,
            depth=depth,
            started_by=started_by,
            team_id=acting_for.team,
            read_teams=None if acting_for.teams is None else list(acting_for.teams),
        )
    if wait:
        execute(execution.pk, on_step)
    else:
        dispatch(execution.pk)
    execution.refresh_from_db()
    return execution


def dispatch(execution_id: int) -> None:
    """Hand the run to Celery: a worker with Redis; in-process on the embedded default.

    Eager Celery runs the task where it is called. Under the embedded web process that
    would hold the request (or the ingest loop) for the whole run, so the run goes to a
    worker thread of the process's event loop instead, exactly as the in-process
    scheduler runs the beat tasks; with no loop (tests, commands) it runs right here.
    """
    from mcps.gateway import embedded

    run_execution = current_app.tasks[RUN_EXECUTION]
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda: run_execution.apply_async(args=[execution_id]))
        return
    loop = embedded.loop()
    if loop is None:
        run_execution.apply(args=[execution_id])
        return

    def hand_over() -> None:
        run = sync_to_async(run_execution.apply, thread_sensitive=False)
        asyncio.run_coroutine_threadsafe(run(args=[execution_id]), loop)

    transaction.on_commit(hand_over)


# ---------------------------------------------------------------- cancel

_local: dict[int, threading.Event] = {}  # runs executing in this process: their cancel flags


def cancel(execution: DirectiveExecution) -> bool:
    """Ask a run to stop (False if already finished); at once if it runs in this process,
    or if the worker running it is gone (nobody is left to stop it)."""
    asked = execution.request_cancel()
    flag = _local.get(execution.pk)
    if asked and flag is not None:
        flag.set()
    elif asked and worker_gone(execution):
        _end_lost(execution, Status.CANCELLED, "cancelled; its worker was gone")
        execution.refresh_from_db()
    return asked


def reap_lost(now: datetime | None = None) -> int:
    """Take up or fail the runs whose worker died mid-run; how many.

    Called by the minute tick. With Celery workers, the workers are asked which tasks
    they run (Celery's remote control): a run whose task none of them runs is lost, and
    `recover` takes it up again (a new message) or fails it. Whatever runs past the run
    timeout and its grace minute is failed too (a live run ends itself at run_timeout).
    Either way it stops counting against max_concurrent.
    """
    now = now or timezone.now()
    found = 0
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        claimed = DirectiveExecution.objects.filter(
            status=Status.RUNNING, started_at__lt=now - timedelta(seconds=CLAIM_GRACE)
        ).exclude(task_id="")
        if claimed.exists():
            running = _running_tasks()
            if running is not None:
                for execution in claimed.select_related("directive"):
                    if execution.task_id not in running and recover(execution, LOST) != "":
                        found += 1
    cutoff = now - timedelta(seconds=settings.DIRECTIVE_RUN_TIMEOUT + 60)
    return found + DirectiveExecution.objects.filter(status=Status.RUNNING, started_at__lt=cutoff).update(
        status=Status.FAILED,
        error="lost: the process running it stopped before it ended",
        completed_at=now,
    )


# ---------------------------------------------------------------- a run whose worker died

LOST = "worker lost: the process running it stopped before it ended"
MAX_RESUMES = 3  # a run that kills its worker every time is failed, not taken up forever
CLAIM_GRACE = 5.0  # seconds: a run just claimed is surely on a worker's active list by then
INSPECT_SECONDS = 1.0


def _running_tasks() -> dict[str, list[tuple[str, int | None]]] | None:
    """{task id: [(worker, pool pid)]} of what every live Celery worker executes now, as
    they answer Celery's remote control (`inspect().active()`); None if the broker could
    not be asked. No answer at all means no worker is alive. (A worker answers from its
    main process, busy or not; a `--pool solo` worker busy with a task cannot.)"""
    try:
        replies = current_app.control.inspect(timeout=INSPECT_SECONDS).active()
    except Exception as exc:  # noqa: BLE001 - the broker is away: nothing can be concluded
        logger.warning("directive runs: could not ask the workers what they run: %s", exc)
        return None
    running: dict[str, list[tuple[str, int | None]]] = {}
    for worker, tasks in (replies or {}).items():
        for task in tasks or []:
            running.setdefault(task["id"], []).append((worker, task.get("worker_pid")))
    return running


def worker_gone(execution: DirectiveExecution) -> bool:
    """Whether the worker that claimed this running execution is certainly gone."""
    if settings.CELERY_TASK_ALWAYS_EAGER or not execution.task_id or execution.status != Status.RUNNING:
        return False
    running = _running_tasks()
    return running is not None and execution.task_id not in running


def recover(execution: DirectiveExecution, reason: str, *, dispatch_again: bool = True) -> str:
    """A running execution whose worker is gone: "resumed" (pending again, from its last
    completed step, when what it was doing is safe to repeat; handed to a worker unless
    `dispatch_again` is false), "failed" (with `reason`), "cancelled" (it was asked to
    stop), or "" (it had moved on meanwhile)."""
    if execution.cancel_requested:
        return "cancelled" if _end_lost(execution, Status.CANCELLED, "cancelled; its worker was gone") else ""
    if execution.resumes < MAX_RESUMES and repeatable(execution):
        taken = DirectiveExecution.objects.filter(
            pk=execution.pk, status=Status.RUNNING, task_id=execution.task_id
        ).update(status=Status.PENDING, task_id="", resumes=F("resumes") + 1)
        if not taken:
            return ""
        logger.warning(
            "directive %s: execution %s lost its worker; resumed", execution.directive_name, execution.pk
        )
        if dispatch_again:
            dispatch(execution.pk)
        return "resumed"
    if execution.resumes >= MAX_RESUMES:
        reason = f"{reason} ({execution.resumes} times; not taken up again)"
    return "failed" if _end_lost(execution, Status.FAILED, reason) else ""


def _end_lost(execution: DirectiveExecution, status: str, reason: str) -> bool:
    """End a lost run (still the one its task held) with `status`; its unfinished steps too."""
    now = timezone.now()
    ended = DirectiveExecution.objects.filter(
        pk=execution.pk, status=Status.RUNNING, task_id=execution.task_id
    ).update(status=status, error=reason, completed_at=now)
    if not ended:
        return False
    run = Run(execution, Limits.from_settings())
    step_status = StepRun.Status.CANCELLED if status == Status.CANCELLED else StepRun.Status.FAILED
    for record in StepRun.objects.filter(execution=execution, status=StepRun.Status.RUNNING):
        run._finish(record, step_status, None, reason)
    run._end(status, reason)
    logger.warning(
        "directive %s: execution %s %s: %s", execution.directive_name, execution.pk, status, reason
    )
    return True


def repeatable(execution: DirectiveExecution) -> bool:
    """Whether its run may go on from its last completed top-level step: the step it was
    in (if it had begun one) must be safe to repeat, all through: scripts that only read
    (`read:*` permissions) and tools their server annotates read-only or idempotent."""
    directive = execution.directive
    if directive is None:
        return False
    steps = directive.definition.get("steps") or []
    index = _resume_point(execution, steps)
    if (
        index >= len(steps)
        or not StepRun.objects.filter(execution=execution, path=f"steps[{index}]").exists()
    ):
        return True  # between steps: nothing half done
    return all(_safe_to_repeat(step) for step in definition.walk([steps[index]]))


def _safe_to_repeat(step: dict[str, Any]) -> bool:
    from mcps.models import Tool

    name = definition.script_name(step)
    if name is not None:
        script = scripts.get(name)
        return script is not None and all(p.startswith("read:") for p in script.permissions)
    ref = definition.tool_ref(step)
    if ref is not None:
        hints = (
            Tool.objects.filter(server_id=ref.server, name=ref.tool)
            .values_list("annotations", flat=True)
            .first()
        )
        hints = hints or {}
        return bool(hints.get("readOnlyHint") or hints.get("idempotentHint"))
    return True  # a group, foreach or conditional: as safe as the steps it holds (walked too)


def _top_level(path: str) -> int | None:
    match = _TOP_LEVEL.fullmatch(path)
    return int(match.group(1)) if match else None


def _done(steps: list[Any], index: int, record: StepRun) -> bool:
    """A top-level step that needs no repeat: completed, or failed and let go (continue_on_error)."""
    if record.status == StepRun.Status.COMPLETED:
        return True
    step = steps[index] if index < len(steps) else {}
    return record.status == StepRun.Status.FAILED and bool(step.get("continue_on_error"))


def _resume_point(execution: DirectiveExecution, steps: list[Any]) -> int:
    """The index of the first top-level step not done by an earlier attempt."""
    done = set()
    for record in StepRun.objects.filter(execution=execution):
        index = _top_level(record.path)
        if index is not None and _done(steps, index, record):
            done.add(index)
    index = 0
    while index in done:
        index += 1
    return index


# ---------------------------------------------------------------- the guards


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_foreach_items: int
    step_timeout: float
    run_timeout: float
    max_concurrent: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            settings.DIRECTIVE_MAX_STEPS,
            settings.DIRECTIVE_MAX_FOREACH_ITEMS,
            settings.DIRECTIVE_STEP_TIMEOUT,
            settings.DIRECTIVE_RUN_TIMEOUT,
            settings.DIRECTIVE_MAX_CONCURRENT,
        )


class Watchdog:
    """Raises StepTimeout (or Cancelled) inside the runner's thread if a step overstays."""

    def __init__(self, seconds: float, cancelled: threading.Event, overstayed: str) -> None:
        self.target = threading.get_ident()
        self.deadline = time.monotonic() + seconds
        self.overstayed = overstayed
        self.cancelled = cancelled
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.fired: Stop | None = None
        self.thread = threading.Thread(target=self._watch, name="directive-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.done.set()
            fired = self.fired
        if fired is not None:
            # This runs in the step's own thread: withdraw the raise if it has not been
            # delivered yet (NULL clears it), then raise it here, inside the step's guard.
            # One the step caught and swallowed is raised again the same way.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.target), None)
            raise fired

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            if self.cancelled.is_set():
                self._fire(Cancelled("cancelled while the step ran"))
                return
            if time.monotonic() >= self.deadline:
                self._fire(StepTimeout(self.overstayed))
                return

    def _fire(self, exc: Stop) -> None:
        with self.lock:
            if self.done.is_set():
                return
            self.fired = exc
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.target), ctypes.py_object(type(exc))
            )


# ---------------------------------------------------------------- running a run


def execute(
    execution_id: int,
    on_step: Callable[[StepRun], None] | None = None,
    *,
    task_id: str = "",
    worker: str = "",
) -> DirectiveExecution | None:
    """Run a pending execution to its end; None if it is gone, as is if no longer pending.

    `task_id` is the Celery task running it (`worker` the worker's name). The same task
    finding it running is its message delivered again: Celery requeues the message of
    a pool process that died (acks_late, reject_on_worker_lost), the broker that of a
    worker killed outright (after the visibility timeout). Unless the workers say that
    task still runs elsewhere, its earlier execution was lost: the run is taken up again
    here from its last completed step, or ended as failed (`recover`).
    """
    execution = DirectiveExecution.objects.select_related("directive").filter(pk=execution_id).first()
    if execution is None:
        return None
    if execution.status == Status.RUNNING and task_id and execution.task_id == task_id:
        running = _running_tasks()
        elsewhere = [h for h in (running or {}).get(task_id, []) if h != (worker, os.getpid())]
        if elsewhere or recover(execution, LOST, dispatch_again=False) != "resumed":
            execution.refresh_from_db()
            return execution
        execution.refresh_from_db()
    if execution.status != Status.PENDING:
        return execution
    return Run(execution, Limits.from_settings(), on_step=on_step, task_id=task_id).run()


@dataclass
class Run:
    execution: DirectiveExecution
    limits: Limits
    sequence: int = 0
    result: Any = None
    named: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # keys of earlier results, seed style
    verdicts: dict[str, bool] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    on_step: Callable[[StepRun], None] | None = None
    task_id: str = ""  # the Celery task running it

    @cached_property
    def thread_id(self) -> str:
        """The run's thread: its id and a random part, so no one can know it before the
        run starts (run ids count up: a thread of the id alone could be started first,
        by another team's ingest key). Kept on the execution once claimed."""
        return self.execution.thread_id or f"directive-run-{self.execution.pk}-{secrets.token_hex(8)}"

    @property
    def name(self) -> str:
        return self.execution.directive_name

    # -- lifecycle

    @property
    def scope(self) -> Scope:
        """Whose rows its scripts read, and whose its output is (automations.scope)."""
        teams = self.execution.read_teams
        return Scope(None if teams is None else tuple(teams), self.execution.team_id)

    @property
    def audience(self) -> list[int]:
        """Who sees its live events: its team's members (and admins); admins alone without one."""
        return [self.execution.team_id] if self.execution.team_id is not None else []

    def run(self) -> DirectiveExecution:
        token = current_run.set(self.execution)
        try:
            with reading(self.scope):
                return self._run()
        finally:
            current_run.reset(token)

    def _run(self) -> DirectiveExecution:
        execution = self.execution
        refused = self._claim()
        if refused:
            return self._end(Status.FAILED, refused, started=False)
        _local[execution.pk] = self.cancelled
        started_at = execution.started_at or timezone.now()
        # A run taken up again keeps its start: run_timeout bounds all its attempts.
        self.started = time.monotonic() - max(0.0, (timezone.now() - started_at).total_seconds())
        self._record(
            [
                self._event(
                    "thread.started",
                    "started",
                    mcp_id=AGGREGATE_ID,
                    user_input=f"run directive {self.name}",
                    execution_context={
                        "directive": self.name,
                        "execution_id": execution.pk,
                        "triggered_by": execution.triggered_by,
                        "automation": execution.automation_id,
                        "depth": execution.depth,
                        "inputs": execution.inputs,
                    },
                )
            ],
            status=Status.RUNNING,
        )
        try:
            directive = execution.directive
            if directive is None:
                raise RunFailed("the directive was deleted")
            steps = directive.definition["steps"]
            first = self._resume(steps) if execution.resumes else 0
            self._steps(steps[first:], "steps", {}, first=first)
            problem = output_problem(directive.definition.get("output"), _plain_or_none(self.result))
            if problem:
                raise RunFailed(problem)
        except Cancelled:
            return self._end(Status.CANCELLED, "cancelled")
        except (StepFailed, RunFailed, Stop) as exc:
            return self._end(Status.FAILED, str(exc))
        except Exception as exc:  # a bug in the engine must still end the run, visibly
            logger.exception("directive %s: execution %s failed", self.name, execution.pk)
            return self._end(Status.FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            _local.pop(execution.pk, None)
        return self._end(Status.COMPLETED, "")

    def _claim(self) -> str:
        """Move pending -> running unless the directive already runs max_concurrent times."""
        execution = self.execution
        with transaction.atomic():
            if execution.directive_id is not None:
                # Serializes claims per directive (SQLite's IMMEDIATE transactions do it anyway).
                Directive.objects.select_for_update().filter(pk=execution.directive_id).first()
            running = DirectiveExecution.objects.filter(
                directive_name=execution.directive_name, status=Status.RUNNING
            ).count()
            if running >= self.limits.max_concurrent:
                return (
                    f"{running} runs of {self.name} are already running "
                    f"(automations.max_concurrent is {self.limits.max_concurrent})"
                )
            now = timezone.now()
            claimed = DirectiveExecution.objects.filter(pk=execution.pk, status=Status.PENDING).update(
                status=Status.RUNNING,
                started_at=Coalesce(
                    "started_at", Value(now, output_field=DateTimeField())
                ),  # a run taken up again keeps its start
                thread_id=self.thread_id,
                task_id=self.task_id,
            )
            if not claimed:
                return "no longer pending"
        execution.refresh_from_db()
        return ""

    def _end(self, status: str, error: str, *, started: bool = True) -> DirectiveExecution:
        execution = self.execution
        now = timezone.now()
        execution.refresh_from_db()
        if execution.status in DirectiveExecution.FINAL and not started:
            return execution
        execution.status, execution.error, execution.completed_at = status, error, now
        execution.result = _plain(self.result) if status == Status.COMPLETED else execution.result
        if execution.started_at is not None:
            execution.duration_ms = (now - execution.started_at).total_seconds() * 1000
        execution.save(
            update_fields=["status", "error", "completed_at", "result", "duration_ms", "steps_run"]
        )
        events = []
        if started:
            thread_status = {Status.COMPLETED: "complete", Status.CANCELLED: "cancelled"}.get(status, "error")
            events.append(self._event("thread.ended", "ended", status=thread_status))
        self._record(events, status=status)
        return execution

    # -- steps

    def _steps(self, steps: list[dict[str, Any]], path: str, scope: dict[str, Any], first: int = 0) -> None:
        for i, step in enumerate(steps, start=first):
            self._step(step, f"{path}[{i}]", scope)

    def _resume(self, steps: list[dict[str, Any]]) -> int:
        """Taken up again after its worker was lost: the earlier attempt's steps stay as
        they were (one left running is failed, it is repeated), the completed top-level
        steps' outputs are restored; the index of the first step to run."""
        first = _resume_point(self.execution, steps)
        records = list(StepRun.objects.filter(execution=self.execution).order_by("sequence"))
        self.sequence = max((r.sequence for r in records), default=0)
        for record in records:
            if record.status == StepRun.Status.RUNNING:
                self._finish(record, StepRun.Status.FAILED, None, f"{LOST}; repeated")
        for record in records:
            index = _top_level(record.path)
            if index is None or index >= first or not _done(steps, index, record):
                continue
            output = record.output if record.status == StepRun.Status.COMPLETED else {"error": record.error}
            self.result = output
            if steps[index].get("name"):
                self.named[steps[index]["name"]] = output
            if isinstance(output, dict):
                self.values.update(output)
        return first

    def _step(self, step: dict[str, Any], path: str, scope: dict[str, Any]) -> None:
        self._between_steps()
        kind = definition.kind(step)
        record = self._begin(step, path, kind)
        try:
            if kind == "foreach":
                output = self._foreach(step, path, scope, record)
            elif kind == "conditional":
                output = self._conditional(step, path, scope)
            elif kind == "steps":
                self._steps(step["steps"], f"{path}.steps", scope)
                output = self.result
            else:
                output = self._leaf(step, path, kind, scope, record)
        except StepFailed as exc:
            self._finish(record, StepRun.Status.FAILED, None, exc.reason)
            if not step.get("continue_on_error"):
                raise
            output = {"error": exc.reason}
        except Stop as exc:
            cancelled = isinstance(exc, Cancelled)
            self._finish(
                record, StepRun.Status.CANCELLED if cancelled else StepRun.Status.FAILED, None, str(exc)
            )
            if isinstance(exc, StepTimeout):
                raise StepFailed(path, str(exc)) from None
            raise
        except RunFailed as exc:
            self._finish(record, StepRun.Status.FAILED, None, str(exc))
            raise
        else:
            self._finish(record, StepRun.Status.COMPLETED, output, "")
        self.result = output
        if step.get("name"):
            self.named[step["name"]] = output
        if isinstance(output, dict):
            self.values.update(output)

    def _between_steps(self) -> None:
        limits, execution = self.limits, self.execution
        if (
            self.cancelled.is_set()
            or DirectiveExecution.objects.filter(pk=execution.pk, cancel_requested=True).exists()
        ):
            raise Cancelled("cancelled")
        if time.monotonic() - self.started > limits.run_timeout:
            raise RunFailed(f"the run took longer than {limits.run_timeout:g} s (automations.run_timeout)")
        if self.sequence >= limits.max_steps:
            raise RunFailed(f"more than {limits.max_steps} steps (automations.max_steps)")

    def _context(self, scope: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.values,
            **self.named,
            "inputs": self.execution.inputs,
            "steps": self.named,
            "result": self.result,
            **scope,
        }

    def _foreach(self, step: dict[str, Any], path: str, scope: dict[str, Any], record: StepRun) -> list[Any]:
        source = step["foreach"]
        try:
            if isinstance(source, list):
                items = templating.render(source, self._context(scope))
            else:
                whole = templating.WHOLE.match(source)
                items = templating.evaluate(whole["expr"] if whole else source, self._context(scope))
        except templating.TemplateProblem as exc:
            raise StepFailed(path, str(exc)) from None
        if isinstance(items, dict):
            items = list(items.values())
        if not isinstance(items, list | tuple | range):
            raise StepFailed(path, f"foreach needs a list, {source!r} is {type(items).__name__}")
        if len(items) > self.limits.max_foreach_items:
            raise StepFailed(
                path,
                f"foreach over {len(items)} items is more than {self.limits.max_foreach_items} "
                "(automations.max_foreach_items)",
            )
        items = templating.plain(items)
        record.input = {"items": len(items)}
        record.save(update_fields=["input"])
        results = []
        for index, item in enumerate(items):
            self.result = None
            self._steps(step["steps"], f"{path}#{index}.steps", {**scope, "item": item, "index": index})
            results.append(self.result)
        return results

    def _conditional(self, step: dict[str, Any], path: str, scope: dict[str, Any]) -> Any:
        conditional = step["conditional"]
        try:
            taken = templating.truthy(conditional["if"], self._context(scope))
        except templating.TemplateProblem as exc:
            raise StepFailed(path, str(exc)) from None
        branch = "then" if taken else "else"
        steps = conditional.get(branch)
        if steps is None:
            return self.result
        if isinstance(steps, list):
            self._steps(steps, f"{path}.conditional.{branch}", scope)
        else:  # a branch written as one step
            self._step(steps, f"{path}.conditional.{branch}", scope)
        return self.result

    def _leaf(
        self, step: dict[str, Any], path: str, kind: str, scope: dict[str, Any], record: StepRun
    ) -> Any:
        try:
            needed = bounds.needed_by(step)
        except bounds.UnknownScript as exc:
            raise StepFailed(path, str(exc)) from None
        for permission in needed:
            self._check(permission, path)
        key = "inputs" if kind == "script" else "arguments"
        try:
            params = templating.render(step.get(key) or step.get("inputs") or {}, self._context(scope))
        except templating.TemplateProblem as exc:
            raise StepFailed(path, str(exc)) from None
        record.input = params
        record.save(update_fields=["input"])
        step_timeout = min(
            float(step.get("timeout_seconds") or self.limits.step_timeout), self.limits.step_timeout
        )
        left = self.limits.run_timeout - (time.monotonic() - self.started)
        timeout, overstayed = step_timeout, f"did not finish within {step_timeout:g} s"
        if left < step_timeout:
            timeout = max(left, 0.01)
            overstayed = f"the run took longer than {self.limits.run_timeout:g} s (automations.run_timeout)"
        call: Callable[[], Any]
        answer: dict[str, Any] = {}  # a tool's result or error, as the gateway gave it
        if kind == "script":
            script = scripts.get(definition.script_name(step) or "")
            assert script is not None  # needed_by() found it
            call = lambda: scripts.run_for_each_team(script, params)  # noqa: E731
        else:
            ref = definition.tool_ref(step)
            assert ref is not None
            call = lambda: call_tool(ref.server, ref.tool, params, timeout, answer)  # noqa: E731
        watchdog = Watchdog(timeout, self.cancelled, overstayed)
        began, clock = datetime.now(UTC), time.perf_counter()
        try:
            try:
                with watchdog:
                    output = call()
            finally:
                if kind != "script":  # recorded outside the watchdog, which may raise at any moment
                    self._record_call(ref.server, ref.tool, params, began, clock, answer, record)
        except Stop as exc:
            raise (watchdog.fired or exc) from None
        except Exception as exc:
            raise StepFailed(path, str(exc) or type(exc).__name__) from None
        try:
            return _plain(output)
        except (TypeError, ValueError) as exc:
            raise StepFailed(path, f"the result is not JSON: {exc}") from None

    def _record_call(
        self,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        began: datetime,
        clock: float,
        answer: dict[str, Any],
        record: StepRun,
    ) -> None:
        """A tool step's call as a thread of its own on the server called, child of the run's,
        ended with the call's outcome (the server's page and `?mcp=<server>` list it)."""
        elapsed = (time.perf_counter() - clock) * 1000
        error = answer.get("error") or ("" if "result" in answer else "no answer: the step was stopped")
        # A call that failed after it was sent, or was stopped waiting, may or may not have run.
        outcome = answer.get("outcome") or (None if "result" in answer or "error" in answer else "unknown")
        session = CallSession(
            key=(),
            id=None,
            via="directive",
            principal=f"directive:{self.name}",
            client={"name": f"directive {self.name}"},
            parent_id=self.thread_id,
        )
        thread_id = f"{self.thread_id}-call-{record.sequence}"
        call = Call(
            server,
            tool,
            arguments,
            began,
            elapsed,
            answer.get("result"),
            error,
            thread_id=thread_id,
            outcome=outcome,
        )
        # The run checked the directive's permissions itself (_check): no second check here.
        self._record(call_thread(session, call, check=False))

    def _check(self, permission: str, path: str) -> None:
        """One PermissionEvent per permission per run; a denial fails the step."""
        if permission not in self.verdicts:
            directive = self.execution.directive
            declared = (directive.definition.get("permissions") or []) if directive is not None else []
            match = bounds.covering(declared, permission)
            granted = match is not None
            self.verdicts[permission] = granted
            action, _, resource = permission.partition(":")
            self._record(
                [
                    self._event(
                        "permission.check",
                        f"permission-{len(self.verdicts)}",
                        user_id=f"directive:{self.name}",
                        resource=resource,
                        action=action,
                        granted=granted,
                        reason=f"covered by {match!r}"
                        if granted
                        else "not among the directive's permissions",
                        rules_checked=declared,
                        inheritance_chain=[f"directive:{self.name}"],
                    )
                ]
            )
        if not self.verdicts[permission]:
            raise StepFailed(path, f"permission {permission!r} denied: not among the directive's permissions")

    # -- records

    def _begin(self, step: dict[str, Any], path: str, kind: str) -> StepRun:
        self.sequence += 1
        record = StepRun.objects.create(
            execution=self.execution, sequence=self.sequence, path=path, name=step.get("name", ""), kind=kind
        )
        self.execution.steps_run = self.sequence
        DirectiveExecution.objects.filter(pk=self.execution.pk).update(steps_run=self.sequence)
        self._record([self._step_event(record)], step=record)
        if self.on_step is not None:
            self.on_step(record)
        return record

    def _finish(self, record: StepRun, status: str, output: Any, error: str) -> None:
        record.status, record.output, record.error = status, _plain_or_none(output), error
        record.duration_ms = (timezone.now() - record.started_at).total_seconds() * 1000
        record.save(update_fields=["status", "output", "error", "duration_ms"])
        self._record([self._step_event(record)], step=record)
        if self.on_step is not None:
            self.on_step(record)

    def _step_event(self, record: StepRun) -> dict[str, Any]:
        step_type = {"script": "script", "tool": "tool_call"}.get(
            record.kind, ExecutionStep.StepType.DIRECTIVE
        )
        step_status = {
            StepRun.Status.RUNNING: "running",
            StepRun.Status.COMPLETED: "complete",
        }.get(record.status, "error")
        return self._event(
            "thread.step",
            f"step-{record.sequence}-{record.status}",
            sequence=record.sequence,
            step_type=step_type,
            description=f"{record.kind} {record.name or record.path}",
            details={
                "path": record.path,
                "input": record.input,
                "output": record.output,
                "error": record.error,
            },
            status=step_status,
            duration_ms=record.duration_ms,
        )

    def _event(self, type_: str, suffix: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"{self.thread_id}-{suffix}",
            "type": type_,
            "timestamp": timezone.now().isoformat(),
            "thread_id": self.thread_id,
            **fields,
        }

    def _record(
        self, events: list[dict[str, Any]], *, status: str | None = None, step: StepRun | None = None
    ) -> None:
        """Store events through ingest and publish them with a directive.execution event."""
        outbox = Outbox()
        if events:
            # Its thread is its team's (a system run's: admins only), like its output.
            stored = ingest(events, Source(mcp_id=None, team_id=self.execution.team_id))
            for verdict in stored.verdicts:
                if verdict.status == "rejected":
                    logger.error(
                        "execution %s: %s rejected: %s", self.execution.pk, verdict.field, verdict.reason
                    )
            outbox = stored.outbox
        if status is not None or step is not None:
            payload = {
                "type": EXECUTION_EVENT,
                "execution_id": self.execution.pk,
                "directive": self.name,
                "status": status or self.execution.status,
                "thread_id": self.thread_id if self.execution.thread_id else None,
                "timestamp": timezone.now().isoformat(),
            }
            if step is not None:
                payload["step"] = step.as_dict()
            if status is not None:
                payload["error"] = self.execution.error if status != Status.RUNNING else ""
                outbox.add("global", encode(payload), teams=self.audience)
            if self.execution.thread_id:
                outbox.add(f"thread:{self.thread_id}", encode(payload), teams=self.audience)
        if len(outbox):
            async_to_sync(outbox.send)()


def call_tool(
    server: str, tool: str, arguments: dict[str, Any], timeout: float, answer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A tool call through the gateway (as the health task reaches it); fails on an error result.

    `answer`, if given, receives the gateway's `result` (the CallToolResult) or its `error`.
    """
    from mcps.gateway import rpc

    answer = {} if answer is None else answer
    try:
        reply = async_to_sync(rpc.request)(
            "call_tool",
            {"mcp_id": server, "tool": tool, "arguments": arguments, "timeout": timeout},
            timeout=timeout,
        )
    except rpc.GatewayError as exc:
        answer["error"] = exc.reason
        if exc.outcome is not None:
            answer["outcome"] = exc.outcome
        raise RuntimeError(f"{server}/{tool}: {exc.reason}") from None
    result = answer["result"] = reply["result"]
    text = "\n".join(c.get("text", "") for c in result.get("content") or [] if c.get("type") == "text")
    if result.get("isError"):
        raise RuntimeError(f"{server}/{tool} answered an error: {text[:500]}")
    return {
        "text": text,
        "structured": result.get("structuredContent"),
        "content": result.get("content") or [],
    }


def _plain(value: Any) -> Any:
    """JSON data (what is stored and what later steps see)."""
    return loads(dumps(value))


def _plain_or_none(value: Any) -> Any:
    try:
        return _plain(value)
    except (TypeError, ValueError):
        return None
