"""The performance report (generate_performance_report): p50/p95/p99 of durations.

By tool and by server over tool-call steps that carry a duration (each routed call's
`tool_result`, or a pushed step with `duration_ms`), and by thread kind over finished
threads. Percentiles are computed by the database on PostgreSQL (missioncontrol.stats).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import CharField, F, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from automations.models import KnowledgeEntry
from automations.scope import current
from automations.script_registry import script
from automations.scripts.params import number
from missioncontrol.stats import percentiles_by
from threads.models import ExecutionStep

DIRECTIVE = "generate_performance_report"
TOOL_STEPS = (ExecutionStep.StepType.TOOL_CALL, ExecutionStep.StepType.TOOL_RESULT)


def report(window_hours: float) -> dict[str, Any]:
    since = timezone.now() - timedelta(hours=window_hours)
    scope = current()
    steps = scope.steps().filter(step_type__in=TOOL_STEPS, timestamp__gte=since, duration_ms__isnull=False)
    server = Coalesce(KeyTextTransform("mcp_id", "details"), F("thread__mcp_id"), output_field=CharField())
    tool = Coalesce(KeyTextTransform("tool", "details"), F("description"), output_field=CharField())
    threads = scope.threads().finished_between(since).with_duration().with_kind()
    return {
        "since": since.isoformat(),
        "by_tool": percentiles_by(
            steps, F("duration_ms"), Concat(server, Value("__"), tool, output_field=CharField())
        ),
        "by_server": percentiles_by(steps, F("duration_ms"), server),
        "by_thread_kind": percentiles_by(threads, F("duration"), F("kind")),
    }


@script(
    "performance_report",
    "p50/p95/p99 of durations (ms) by tool, by server and by thread kind over the window; the "
    "slowest tool is stored as knowledge.",
    permissions=["read:threads", "write:knowledge"],
    per_team=True,
)
def performance_report(window_hours: float = 24, source_directive: str = DIRECTIVE) -> dict[str, Any]:
    hours = number("window_hours", window_hours)
    found = report(hours)
    slowest = max(found["by_tool"].items(), key=lambda kv: (kv[1]["p95"], kv[0]), default=None)
    if slowest is not None:
        name, stats = slowest
        KnowledgeEntry.objects.record(
            "performance-slowest-tool",
            title="Slowest tool",
            category=KnowledgeEntry.Category.OPTIMIZATION,
            content=(
                f"Over the last {hours:g} hours the slowest tool was {name}: p50 {stats['p50']:.0f} ms, "
                f"p95 {stats['p95']:.0f} ms, p99 {stats['p99']:.0f} ms over {stats['count']} calls."
            ),
            confidence=min(0.95, 0.4 + stats["count"] / 100),
            source_directive=source_directive,
        )
    return {**found, "window_hours": hours, "slowest_tool": slowest[0] if slowest else None}
