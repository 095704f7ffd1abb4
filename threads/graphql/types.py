"""GraphQL types of threads: the tree, the timeline, the transcript, and what they logged."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import strawberry
import strawberry_django
from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from strawberry import auto
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry_django.pagination import OffsetPaginationInput

from audit.graphql.types import PermissionEventType
from logs.graphql.types import LogEntryType
from logs.models import LogEntry
from mcps.graphql.types import MCPServerType
from missioncontrol.graphql.context import Context
from missioncontrol.graphql.pagination import page_bounds, paged_list, visible
from missioncontrol.graphql.scalars import BigInt
from threads.models import ExecutionStep, LLMMessage, Thread

# A page of one thread's logs: (thread id, offset, limit).
LogPageKey = tuple[str, int, int | None]


@strawberry_django.type(ExecutionStep)
class ExecutionStepType:
    id: auto
    sequence: auto
    timestamp: auto
    duration_ms: auto
    step_type: auto
    description: auto
    details: auto
    status: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, relation), only what the user may see."""
        return visible(queryset, info)


@strawberry_django.type(LLMMessage)
class LLMMessageType:
    id: strawberry.ID
    role: auto
    content: auto
    timestamp: auto
    metadata: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, relation), only what the user may see."""
        return visible(queryset, info)


async def load_log_pages(keys: list[LogPageKey]) -> list[list[LogEntry]]:
    """The log pages of many threads: one query per distinct page asked for, not per thread."""
    threads_by_page: dict[tuple[int, int | None], list[str]] = defaultdict(list)
    for thread_id, offset, limit in keys:
        threads_by_page[(offset, limit)].append(thread_id)
    pages: dict[LogPageKey, list[LogEntry]] = defaultdict(list)
    for (offset, limit), thread_ids in threads_by_page.items():
        rows = LogEntry.objects.page_per_thread(thread_ids, offset, limit)
        for log in await sync_to_async(list)(rows):
            pages[(log.thread_id, offset, limit)].append(log)
    return [pages.get(key, []) for key in keys]


@strawberry_django.type(Thread)
class ThreadType:
    id: strawberry.ID
    status: auto
    user_input: auto
    execution_context: auto
    started_at: auto
    ended_at: auto
    duration_ms: float | None = strawberry_django.field(only=["started_at", "ended_at"])
    error_count: int = strawberry_django.field(description="How many of its steps failed.")

    @strawberry_django.field(
        only=["session_id"], description="The client session it ran in (REST: /api/sessions/{id})."
    )
    def session_id(self, root: Thread) -> strawberry.ID | None:
        return strawberry.ID(root.session_id) if root.session_id else None

    @strawberry_django.field(
        only=["current_step", "status"],
        description="The step it is in now (sequence, step_type, description, status, "
        "timestamp), while it runs; null once it ended.",
    )
    def current_step(self, root: Thread) -> JSON | None:
        return root.step_now

    memory_usage: BigInt | None = strawberry_django.field(description="Bytes.")
    cpu_usage: float | None = strawberry_django.field(description="Percent.")
    created_at: auto
    updated_at: auto
    parent: ThreadType | None
    mcp: MCPServerType | None
    children: list[ThreadType] = paged_list(
        "-started_at", "-id", description="Its child threads, newest first."
    )
    steps: list[ExecutionStepType] = paged_list("sequence", description="Its timeline, by sequence.")
    messages: list[LLMMessageType] = paged_list(
        "timestamp", "created_at", "id", description="Its LLM transcript, by time."
    )
    permission_events: list[PermissionEventType] = paged_list(
        "-timestamp", "-id", description="Its permission checks, latest first."
    )

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, relation), only what the user may see."""
        return visible(queryset, info)

    # Its logs are visible with it: those of its team or of none (LogEntry.page_per_thread).

    @strawberry_django.field(description="What it logged, newest first.")
    async def logs(
        self, root: Thread, info: Info[Context, None], pagination: OffsetPaginationInput | None = None
    ) -> list[LogEntryType]:
        # Logs name their thread in a plain column, not a foreign key, so the optimizer
        # cannot prefetch them: a DataLoader gathers the threads of the page instead.
        offset, limit = page_bounds(pagination)
        return await info.context.loader(load_log_pages).load((root.id, offset, limit))  # type: ignore[return-value]
