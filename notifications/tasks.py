"""Celery tasks of the notifications: thin over notifications.dispatch.

`deliver` is idempotent by its delivery id (claimed in one UPDATE: a repeat finds it
taken and does nothing) and retries a failed send with exponential backoff: 5, 10,
20, 40, 80, 160 s, then gives up (about five minutes in all).
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore

from mcps.gateway import embedded
from notifications import dispatch
from notifications.handoff import later


class EagerBackoff(Task):
    """Retries of an eager task (the embedded default) wait their backoff on the web
    process's event loop: Celery's eager mode would run them again at once, and raise
    its Retry to whoever handed the task over."""

    def retry(  # type: ignore[override]
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        retries = self.request.retries + 1
        limit = self.max_retries if max_retries is None else max_retries
        if not self.request.is_eager or (limit is not None and retries > limit):
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        again = list(self.request.args or [])
        loop = embedded.loop()
        if loop is None:  # no loop to wait on (tests, commands): at once, as Celery's eager mode would
            self.apply(args=again, retries=retries)
        else:
            later(loop, countdown or 0, lambda: self.apply(args=again, retries=retries))
        raise Ignore()


@shared_task(
    bind=True,
    base=EagerBackoff,
    name=dispatch.DELIVER,
    acks_late=True,
    autoretry_for=(dispatch.DeliveryFailed,),
    retry_backoff=dispatch.BACKOFF_SECONDS,
    retry_backoff_max=dispatch.BACKOFF_MAX_SECONDS,
    retry_jitter=False,  # the delivery row shows when the next attempt comes: it must be that time
    max_retries=dispatch.MAX_RETRIES,
)
def deliver(self: Task, delivery_id: str) -> str | None:
    """One attempt at a delivery; raises DeliveryFailed (so Celery retries) while tries remain."""
    return dispatch.attempt(delivery_id, retries=self.request.retries)


@shared_task(name=dispatch.PROCESS, acks_late=True)
def process(events: list[str]) -> list[str]:
    """Raise and clear alerts for published (encoded) events; the deliveries it queued."""
    return dispatch.process(events)


@shared_task(name="notifications.sweep", expires=55)
def sweep() -> dict[str, int]:
    """Every minute: clear alerts whose condition went away, and pick up lost deliveries."""
    return dispatch.sweep()
