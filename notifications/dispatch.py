"""From published events to sent messages.

- `on_published` sees every batch published on `global` (hooked into the live Outbox,
  like automation triggers). On that hot path it only looks for the alert kinds in the
  encoded text and, if some channel exists, hands the batch to the `notifications.process`
  task: nothing is decided or sent where the event was published.
- `process` raises alerts (one open Alert per key) and clears them (notifications.kinds),
  and queues a Delivery per channel whose rules allow it: the alert's message once per
  open alert, its resolution to the channels that got the alert.
- `attempt` sends one Delivery (the `notifications.deliver` task); `sweep` runs every
  minute: clears alerts whose condition went away with no event to say so, fails
  deliveries interrupted mid-send, and hands lost deliveries over again.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from celery import current_app
from celery.utils.time import get_exponential_backoff_interval
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from missioncontrol.jsontext import loads
from notifications import kinds
from notifications.handoff import hand_off
from notifications.kinds import Raised
from notifications.models import Alert, Channel, Delivery

BACKOFF_SECONDS = 5
BACKOFF_MAX_SECONDS = 300
MAX_RETRIES = 6
# The Celery tasks (notifications.tasks) work is handed to, looked up by their names.
PROCESS = "notifications.process"
DELIVER = "notifications.deliver"
# A claim older than this never finished: Apprise gives each target 30 s.
INTERRUPTED_AFTER = timedelta(minutes=10)
# A waiting delivery this far past its time lost its hand-off (a restart): handed over again.
LOST_AFTER = timedelta(minutes=5)

MARKERS = tuple(f'"type":"{kind}"' for kind in kinds.KINDS)
RUN_EVENT = '"type":"directive.execution"'
RUN_ENDS = ('"status":"failed"', '"status":"completed"')
_CACHE_SECONDS = 5.0
_channels: tuple[float, bool] | None = None  # (when read, whether any channel is enabled)


class DeliveryFailed(Exception):
    """A delivery's targets did not all take it; the task retries."""


def forget(**_: Any) -> None:
    """A channel changed: read again whether any is enabled (post_save/post_delete)."""
    global _channels
    _channels = None


def _fresh() -> bool | None:
    if _channels is None or time.monotonic() - _channels[0] > _CACHE_SECONDS:
        return None
    return _channels[1]


def channels_enabled() -> bool:
    global _channels
    found = _fresh()
    if found is None:
        found = Channel.objects.enabled().exists()
        _channels = (time.monotonic(), found)
    return found


async def on_published(global_events: list[str]) -> None:
    """Hand the batch's alert events to the `notifications.process` task, if any channel listens."""
    wanted = [text for text in global_events if _may_alert(text)]
    if not wanted:
        return
    listening = _fresh()
    if listening is None:
        listening = await sync_to_async(channels_enabled, thread_sensitive=False)()
    if listening:
        # Not the thread-sensitive thread: the publisher (the gateway reporting a status,
        # say) may be answering a call that very thread is blocked on.
        await sync_to_async(hand_off, thread_sensitive=False)(current_app.tasks[PROCESS], [wanted])


def _may_alert(text: str) -> bool:
    """Whether an encoded event may raise or clear an alert, read from its text alone (the
    encoding is compact JSON); of a run's events only its end counts, not each start."""
    if RUN_EVENT in text:
        return any(end in text for end in RUN_ENDS)
    return any(marker in text for marker in MARKERS)


def process(events: list[str]) -> list[str]:
    """Raise and clear the alerts these encoded `global` events mean; the deliveries queued."""
    queued: list[Delivery] = []
    for text in events:
        for signal in kinds.interpret(loads(text)):
            if isinstance(signal, Raised):
                queued += raise_alert(signal)
            else:
                matching = Q(key__in=signal.keys) | Q(kind__in=signal.kinds)
                queued += recheck(Alert.objects.resolvable().filter(matching))
    return [str(d.pk) for d in queued]


def raise_alert(raised: Raised) -> list[Delivery]:
    """The alert of `raised.key`, open; its message queued to each channel that allows it
    and has not had it yet (a repeat while open queues nothing)."""
    alert, _made = Alert.objects.raise_alert(raised)
    now = timezone.now()
    queued = [
        delivery
        for channel in Channel.objects.enabled().for_team(alert.team_id)
        if channel.allows(alert.kind, alert.severity, now)
        and (delivery := Delivery.objects.queue(channel, alert, Delivery.Purpose.ALERT)) is not None
    ]
    _send(queued)
    return queued


def recheck(alerts: QuerySet[Alert]) -> list[Delivery]:
    """Resolve those of `alerts` that have cleared; their resolve messages queued."""
    queued: list[Delivery] = []
    for alert in alerts.select_related("team"):
        reason = kinds.cleared(alert)
        if reason is not None and alert.resolve(reason):
            queued += _resolutions(alert)
    _send(queued)
    return queued


def _resolutions(alert: Alert) -> list[Delivery]:
    """The resolve message, to the channels that were sent the alert (and want it now).

    An alert message still waiting for its first target (a retry's backoff) is dropped
    instead: it would arrive after the news that it is over.
    """
    now = timezone.now()
    queued: list[Delivery] = []
    for sent in Delivery.objects.filter(alert=alert, purpose=Delivery.Purpose.ALERT).select_related(
        "channel"
    ):
        if not sent.delivered and Delivery.objects.supersede(sent.pk):
            continue
        channel = sent.channel
        if channel.send_resolved and channel.allows(alert.kind, alert.severity, now):
            delivery = Delivery.objects.queue(channel, alert, Delivery.Purpose.RESOLVED)
            if delivery is not None:
                queued.append(delivery)
    return queued


def _send(deliveries: list[Delivery]) -> None:
    deliver = current_app.tasks[DELIVER]
    for delivery in deliveries:
        transaction.on_commit(partial(hand_off, deliver, [str(delivery.pk)]))


def backoff(retries: int) -> timedelta:
    """How long after its `retries`-th retry failed a delivery is tried again (Celery's formula)."""
    return timedelta(
        seconds=get_exponential_backoff_interval(
            BACKOFF_SECONDS, retries, BACKOFF_MAX_SECONDS, full_jitter=False
        )
    )


def attempt(delivery_id: str, retries: int) -> str | None:
    """One attempt at the delivery; its status after, None if it was not there to take.

    DeliveryFailed while retries remain, so the Celery task tries again after `backoff`.
    """
    delivery = Delivery.objects.claim(delivery_id)
    if delivery is None:
        return None
    outcome = delivery.attempt(last=retries >= MAX_RETRIES, backoff=backoff(retries))
    if delivery.status == Delivery.Status.RETRYING:
        raise DeliveryFailed(outcome.error_text())
    return str(delivery.status)


def send_test(channel: Channel) -> Delivery:
    """Send `channel` a test message now, once, in this thread; the delivery says how it went."""
    delivery = Delivery.objects.queue(channel, None, Delivery.Purpose.TEST)
    assert delivery is not None  # a test belongs to no alert: nothing to dedupe
    claimed = Delivery.objects.claim(delivery.pk)
    assert claimed is not None
    claimed.attempt(last=True, backoff=timedelta(0))
    return claimed


def sweep() -> dict[str, int]:
    resolved = recheck(Alert.objects.resolvable())
    interrupted = Delivery.objects.interrupted(INTERRUPTED_AFTER)
    lost = [str(pk) for pk in Delivery.objects.overdue(LOST_AFTER).values_list("pk", flat=True)]
    if lost:
        deliver = current_app.tasks[DELIVER]
        for delivery_id in lost:
            hand_off(deliver, [delivery_id])
    return {"resolved": len(resolved), "interrupted": interrupted, "handed_over": len(lost)}
