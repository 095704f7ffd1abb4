"""Periodic work on the managed servers (Celery tasks, thin over the gateway)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from celery import shared_task

from mcps.gateway import rpc


@shared_task(name="mcps.check_health")
def check_health() -> list[dict[str, Any]]:
    """Probe every managed server once, every `mcps.health_check_interval`.

    The gateway pings each (or lists its tools on 2026-07-28 servers, which have no
    ping), stores a HealthCheck row per server, and a failed probe drops the session:
    the server shows degraded and is reconnected with backoff, its change broadcast on
    `mcp:{id}` and `global`.
    """
    answer = async_to_sync(rpc.request)("check_health", {}, timeout=60)
    return list(answer["results"])
