"""GraphQL type of a structured log line."""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry import auto

from logs.models import LogEntry


@strawberry_django.type(LogEntry)
class LogEntryType:
    id: strawberry.ID
    timestamp: auto
    level: auto
    service: auto
    thread_id: auto
    mcp_id: auto
    message: auto
    context: auto
    exception: auto
    received_at: auto
