"""MCP servers known to Mission Control and the keys they push events with."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta
from typing import Self

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

LAST_SEEN_RESOLUTION = timedelta(seconds=5)
# Server id -> monotonic time this process last wrote its row (see register_seen).
_registered: dict[str, float] = {}


class MCPServerQuerySet(models.QuerySet["MCPServer"]):
    def register_seen(self, ids: set[str], referenced: set[str] | None = None) -> None:
        """Record that servers `ids` pushed events now; make sure `referenced` rows exist.

        A process writes a server's last_seen at most once per LAST_SEEN_RESOLUTION:
        each batch writing the same row would serialize concurrent ingest transactions
        on its lock, and most batches come from a server seen a moment ago. Servers that
        rows of this batch will reference (threads) are always inserted-if-missing, which
        takes no lock on an existing row.
        """
        now = time.monotonic()
        stale = {i for i in ids if now - _registered.get(i, -1e9) > LAST_SEEN_RESOLUTION.total_seconds()}
        create = stale | (referenced or set())
        if not create:
            return
        at = timezone.now()
        self.bulk_create([MCPServer(id=i, name=i, last_seen=at) for i in create], ignore_conflicts=True)
        if stale:
            old = Q(last_seen__isnull=True) | Q(last_seen__lt=at - LAST_SEEN_RESOLUTION)
            self.filter(old, id__in=stale).update(last_seen=at)
            transaction.on_commit(lambda: _registered.update(dict.fromkeys(stale, now)))

    def forget_registered(self) -> None:
        """Drop the process's memory of registered servers (one was deleted, say)."""
        _registered.clear()


class MCPServer(models.Model):
    """An MCP server (or agent host) whose threads, logs and checks we record."""

    class Status(models.TextChoices):
        UNKNOWN = "unknown"
        CONNECTING = "connecting"
        CONNECTED = "connected"
        DEGRADED = "degraded"
        DISCONNECTED = "disconnected"

    id = models.CharField(primary_key=True, max_length=200, help_text="The mcp_id events carry.")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(null=True, blank=True)

    objects = MCPServerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name if self.name == self.id else f"{self.name} ({self.id})"


def hash_key(raw: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: no dictionary to guess from.
    return hashlib.sha256(raw.encode()).hexdigest()


class IngestKeyQuerySet(models.QuerySet["IngestKey"]):
    def active(self) -> Self:
        return self.filter(revoked_at__isnull=True)

    def issue(self, name: str, mcp: MCPServer | None = None) -> tuple[IngestKey, str]:
        """Create a key named `name`; the raw key is returned once and never stored."""
        raw = "mc_" + secrets.token_urlsafe(32)
        key = self.create(name=name, mcp=mcp, prefix=raw[:10], key_hash=hash_key(raw))
        return key, raw

    def authenticate(self, raw: str) -> IngestKey | None:
        """The active key whose hash matches `raw`, or None."""
        if not raw:
            return None
        return self.active().select_related("mcp").filter(key_hash=hash_key(raw)).first()


class IngestKey(models.Model):
    """A bearer key that lets one MCP server (or any, if unbound) push events."""

    name = models.CharField(max_length=200, unique=True)
    mcp = models.ForeignKey(
        MCPServer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ingest_keys",
        help_text="Events pushed with this key default to, and may only name, this server.",
    )
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = IngestKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self) -> None:
        """Mark the key used; at most one write a minute so ingest stays cheap."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            IngestKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
