"""The seed's LogFilter: one definition applied to stored logs and to live ones alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from logs.models import LogEntry
from missioncontrol.live import LogMeta


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which logs a subscriber wants; empty fields match everything."""

    threads: frozenset[str] = frozenset()
    mcps: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, payload: Mapping[str, Any] | None) -> LogFilter:
        """From a subscribe payload; ValueError naming the field otherwise."""
        if not payload:
            return cls()
        if not isinstance(payload, Mapping):
            raise ValueError("payload: expected an object")
        sets: dict[str, frozenset[str]] = {}
        for name in ("threads", "mcps", "levels", "services"):
            value = payload.get(name) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name}: expected an array of strings")
            sets[name] = frozenset(value)
        levels = frozenset(level.upper() for level in sets["levels"])
        unknown = levels - set(LogEntry.Level.values)
        if unknown:
            raise ValueError(
                f"levels: unknown {', '.join(sorted(unknown))}; expected DEBUG, INFO, WARN, ERROR"
            )
        search = payload.get("search") or ""
        if not isinstance(search, str):
            raise ValueError("search: expected a string")
        return cls(
            threads=sets["threads"],
            mcps=sets["mcps"],
            levels=levels,
            services=sets["services"],
            words=tuple(w.lower() for w in search.split()),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.threads or self.mcps or self.levels or self.services or self.words)

    def matches(self, meta: LogMeta) -> bool:
        _id, level, service, thread_id, mcp_id, message = meta
        if self.levels and level not in self.levels:
            return False
        if self.services and service not in self.services:
            return False
        if self.threads and thread_id not in self.threads:
            return False
        if self.mcps and mcp_id not in self.mcps:
            return False
        if self.words:
            text = message.lower()
            return all(word in text for word in self.words)
        return True

    def apply(self, qs: QuerySet[LogEntry]) -> QuerySet[LogEntry]:
        # Same semantics as `matches` (every word, case-insensitive) so history and live agree.
        if self.levels:
            qs = qs.filter(level__in=self.levels)
        if self.services:
            qs = qs.filter(service__in=self.services)
        if self.threads:
            qs = qs.filter(thread_id__in=self.threads)
        if self.mcps:
            qs = qs.filter(mcp_id__in=self.mcps)
        for word in self.words:
            qs = qs.filter(message__icontains=word)
        return qs


def recent(
    log_filter: LogFilter, limit: int, thread_id: str | None = None, user: Any = None
) -> list[dict[str, Any]]:
    """The last `limit` matching logs (of those `user` may see, if given), oldest first, as event payloads."""
    qs = LogEntry.objects.all() if user is None else LogEntry.objects.visible_to(user)
    if thread_id is not None:
        qs = qs.filter(thread_id=thread_id)
    rows = list(log_filter.apply(qs).order_by("-timestamp", "-id")[:limit])
    return [row.as_event() for row in reversed(rows)]
