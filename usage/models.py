"""LLM token usage: one row per LLM call a thread's steps reported, kept narrow so that
sums per model, server, user, thread and time bucket are read from it alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Self

from django.db import models

from missioncontrol import roles
from missioncontrol.bulk import upsert

USAGE_FIELDS = ("thread", "sequence", "timestamp", "model", "user", "input_tokens", "output_tokens")
MAX_NAME = 200

# Token counts as OpenTelemetry's GenAI conventions name them (`gen_ai.usage.*` without
# the prefix), then as OpenLLMetry's older attributes and the OpenAI API do.
INPUT_KEYS = ("input_tokens", "prompt_tokens")
OUTPUT_KEYS = ("output_tokens", "completion_tokens")


def _count(usage: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value >= 0:
            return value
        if isinstance(value, float) and value >= 0 and value.is_integer():
            return int(value)
    return None


def usage_of(details: Mapping[str, Any]) -> tuple[str, str, int, int] | None:
    """(model, user, input tokens, output tokens) a step's details report, or None.

    A step reports an LLM call's usage as `details.usage.input_tokens` / `output_tokens`
    (the OTLP receiver maps `gen_ai.usage.*` there; the SDK's `thread.llm()` sends them),
    the model as `details.model` and, optionally, who it ran for as `details.user`.
    """
    usage = details.get("usage")
    if not isinstance(usage, dict):
        return None
    tokens_in, tokens_out = _count(usage, INPUT_KEYS), _count(usage, OUTPUT_KEYS)
    if tokens_in is None and tokens_out is None:
        return None
    model, user = details.get("model"), details.get("user")
    return (
        model.strip()[:MAX_NAME] if isinstance(model, str) else "",
        user.strip()[:MAX_NAME] if isinstance(user, str) else "",
        tokens_in or 0,
        tokens_out or 0,
    )


class LLMUsageQuerySet(models.QuerySet["LLMUsage"]):
    def visible_to(self, user: Any) -> Self:
        """Usage of the threads `user` may see (ThreadQuerySet.visible_to)."""
        return self.of_teams(roles.team_scope(user))

    def of_teams(self, teams: Sequence[int] | None) -> Self:
        return self if teams is None else self.filter(thread__team_id__in=teams)

    def between(self, since: datetime, until: datetime) -> Self:
        return self.filter(timestamp__gte=since, timestamp__lt=until)

    def record_steps(self, steps: Iterable[Mapping[str, Any]]) -> None:
        """Store the usage the steps report (`thread_id`, `sequence`, `timestamp`, `details`,
        at most one per thread and sequence); a later report of a step updates its row.

        One statement for the batch: this runs on the ingest path.
        """
        rows = []
        for step in steps:
            found = usage_of(step["details"])
            if found is not None:
                rows.append((step["thread_id"], step["sequence"], step["timestamp"], *found))
        upsert(LLMUsage, USAGE_FIELDS, rows, unique=["thread", "sequence"], update=USAGE_FIELDS[2:])


class LLMUsage(models.Model):
    """The tokens one LLM call of a thread used, as the step that made it reported them."""

    thread = models.ForeignKey("threads.Thread", on_delete=models.CASCADE, related_name="llm_usage")
    sequence = models.IntegerField(help_text="The step's sequence in its thread.")
    timestamp = models.DateTimeField()
    model = models.CharField(max_length=MAX_NAME, blank=True, default="", help_text="Empty: not reported.")
    user = models.CharField(
        max_length=MAX_NAME, blank=True, default="", help_text="Who the call ran for; empty: not reported."
    )
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)

    objects = LLMUsageQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp"]
        verbose_name = "LLM usage"
        verbose_name_plural = "LLM usage"
        constraints = [
            models.UniqueConstraint(fields=["thread", "sequence"], name="llm_usage_thread_sequence")
        ]
        indexes = [models.Index(fields=["timestamp"], name="llm_usage_time")]

    def __str__(self) -> str:
        return (
            f"{self.thread_id}#{self.sequence} {self.model or '?'}: {self.input_tokens}+{self.output_tokens}"
        )
