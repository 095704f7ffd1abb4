"""Automations fire here: on their cron schedule, on an event, on an alert.

- Schedules: `fire_due()`, called every minute by the `automations.tick` beat task
  (Celery beat with Redis; the web process's in-process scheduler on the embedded
  default). A run is keyed by its scheduled minute, so two ticks fire it once.
- Events and alerts: `on_published()` sees every batch published on `global` (hooked
  once into the live Outbox, after the ingest transaction has committed): thread.ended,
  mcp.status, permission.escalation, anomaly.detected... A run is keyed by the event
  (its id, or its text), so an event fires each automation once.
- Depth: an event of a run's own thread (or naming its execution_id) starts a run one
  deeper; past `automations.max_depth` the run is refused, so an automation that
  triggers itself stops after a few rounds instead of looping.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from automations.inputs import InputError
from automations.models import ALERT_TYPES, Automation, DirectiveExecution, event_field
from automations.scope import SYSTEM, current_run
from missioncontrol.jsontext import loads
from missioncontrol.live import Outbox, encode

logger = logging.getLogger(__name__)

RUN_THREAD = re.compile(r"^directive-run-(\d+)(?:-[0-9a-f]{16})?$")
_CACHE_SECONDS = 5.0
_watched: tuple[float, frozenset[str]] | None = None  # (when read, event types some automation waits for)


def forget(**_: Any) -> None:
    """An automation changed: read the watched event types again (post_save/post_delete)."""
    global _watched
    _watched = None


def _fresh() -> frozenset[str] | None:
    """The watched types if read recently, without touching the database."""
    if _watched is None or time.monotonic() - _watched[0] > _CACHE_SECONDS:
        return None
    return _watched[1]


def watched_types() -> frozenset[str]:
    global _watched
    types = _fresh()
    if types is None:
        rows = Automation.objects.enabled().exclude(trigger=Automation.Trigger.SCHEDULE)
        found: set[str] = set()
        for event_type in rows.values_list("event_type", flat=True):
            found |= {event_type} if event_type else set(ALERT_TYPES)
        types = frozenset(found)
        _watched = (time.monotonic(), types)
    return types


async def on_published(global_events: list[str]) -> None:
    """Fire the automations that wait for any of these (encoded) `global` events."""
    if not global_events:
        return
    # Runs after every published batch (the ingest hot path): no thread hop while cached.
    types = _fresh()
    if types is None:
        types = await sync_to_async(watched_types, thread_sensitive=False)()
    if not types:
        return
    # Cheap before decoding: the encoded text names its type (compact JSON).
    markers = [f'"type":"{t}"' for t in types]
    wanted = [text for text in global_events if any(m in text for m in markers)]
    if wanted:
        # Not the thread-sensitive thread: the publisher (the gateway reporting a status,
        # say) may be answering a call that very thread is blocked on.
        await sync_to_async(fire_for_events, thread_sensitive=False)(
            [loads(text) | {"_text": text} for text in wanted]
        )


def fire_for_events(events: list[dict[str, Any]]) -> list[DirectiveExecution]:
    fired: list[DirectiveExecution] = []
    for event in events:
        text = event.pop("_text", None) or encode(event)
        alert = event.get("type") in ALERT_TYPES
        trigger = DirectiveExecution.Trigger.ALERT if alert else DirectiveExecution.Trigger.EVENT
        candidates = Automation.objects.enabled().filter(trigger=trigger).select_related("directive")
        key = f"event:{event.get('id') or hashlib.sha1(text.encode()).hexdigest()}"
        for automation in candidates:
            if automation.matches(event):
                execution = fire(automation, trigger, {"event": event}, key, _depth_after(event))
                if execution is not None:
                    fired.append(execution)
    return fired


def fire_due(now: datetime | None = None) -> list[DirectiveExecution]:
    """Start every enabled schedule automation due at `now` (once per scheduled minute)."""
    now = now or timezone.now()
    fired = []
    for automation in (
        Automation.objects.enabled().filter(trigger=Automation.Trigger.SCHEDULE).select_related("directive")
    ):
        due = automation.due_at(now)
        if due is None:
            continue
        info = {"scheduled_for": due.isoformat(), "cron": automation.schedule}
        execution = fire(
            automation, DirectiveExecution.Trigger.SCHEDULE, info, f"schedule:{due.isoformat()}", 0
        )
        if execution is not None:
            fired.append(execution)
    return fired


def fire(
    automation: Automation, triggered_by: str, info: dict[str, Any], key: str, depth: int
) -> DirectiveExecution | None:
    """Start the automation's directive; None if this trigger (key) already fired it."""
    from automations import engine

    info = {**info, "automation": automation.name}
    Automation.objects.filter(pk=automation.pk).update(last_executed_at=timezone.now())
    refused = ""
    if depth > settings.DIRECTIVE_MAX_DEPTH:
        refused = (
            f"refused: depth {depth} is past automations.max_depth ({settings.DIRECTIVE_MAX_DEPTH}); "
            "an automation's own runs may not retrigger it further"
        )
    else:
        try:
            return engine.submit(
                automation.directive,
                automation.inputs,
                acting_for=SYSTEM,  # the scheduler's and the triggers' runs are system runs
                triggered_by=triggered_by,
                trigger_info=info,
                automation=automation,
                trigger_key=key,
                depth=depth,
            )
        except IntegrityError:
            return None  # fired for this key already
        except InputError as exc:
            refused = f"refused: the automation's inputs do not fit the directive: {exc}"
    try:
        now = timezone.now()
        return DirectiveExecution.objects.create(
            directive=automation.directive,
            directive_name=automation.directive.name,
            automation=automation,
            triggered_by=triggered_by,
            trigger_info=info,
            trigger_key=key,
            depth=depth,
            status=DirectiveExecution.Status.FAILED,
            error=refused,
            completed_at=now,
        )
    except IntegrityError:
        return None


def _depth_after(event: dict[str, Any]) -> int:
    """0 for an outside event; one more than the run it came from.

    A run is recognised by its thread (`directive-run-<id>`), an `execution_id` in the
    event, or by publishing it from inside its own steps (scope.current_run).
    """
    running = current_run.get()
    depths = [running.depth + 1] if running is not None else []
    execution_id = event_field(event, "execution_id")
    thread_id = str(event_field(event, "thread_id") or "")
    runs = None
    if RUN_THREAD.match(thread_id):
        runs = DirectiveExecution.objects.filter(thread_id=thread_id)  # the run's own, random part and all
    elif isinstance(execution_id, int):
        runs = DirectiveExecution.objects.filter(pk=execution_id)
    if runs is not None:
        depth = runs.values_list("depth", flat=True).first()
        if depth is not None:
            depths.append(depth + 1)
    return max(depths, default=0)


def publish_alert(type_: str, payload: dict[str, Any]) -> None:
    """Publish an alert (`anomaly.detected`, `permission.escalation`) on `global`.

    Alert automations fire on it; a directive run publishing one should name its
    `execution_id`, so the depth guard sees the chain.
    """
    if type_ not in ALERT_TYPES:
        raise ValueError(f"an alert is one of {', '.join(ALERT_TYPES)}")
    outbox = Outbox()
    # About no team in particular: admins see it live; automations react to it all the same.
    alert = encode({"timestamp": timezone.now().isoformat(), **payload, "type": type_})
    outbox.add("global", alert, teams=[])
    async_to_sync(outbox.send)()
