"""Kiwi MCP workspaces and what they hold: directives, tools and knowledge, as indexed.

A workspace is one `.ai/` folder: a project's (`<project>/.ai`) or the user space
(`$USER_SPACE` or `~/.ai`). `KiwiWorkspace.index()` brings its items up to date with
the files: a file whose size and modification time are unchanged is not read; one whose
content hash is unchanged is not parsed; a file gone is removed. A file that does not
parse is kept as an item with its `error` (path and reason on the pages and the API)
and takes no part in the graph; the rest of the workspace is indexed all the same.

Names resolve as Kiwi resolves them: in the item's own workspace first, then in the
user space.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Self

from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from kiwi import formats

# The folder of each kind below `.ai/` (tools kept in the older `scripts/` are tools too).
FOLDERS: tuple[tuple[str, formats.ItemKind], ...] = (
    ("directives", "directive"),
    ("tools", "tool"),
    ("scripts", "tool"),
    ("knowledge", "knowledge"),
)
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", ".git"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo", ".lock", ".swp"})
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass
class IndexReport:
    """What one pass over a workspace did, file by file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # path -> reason

    def __str__(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {self.unchanged} unchanged, "
            f"{len(self.removed)} removed, {len(self.errors)} not parsed"
        )


class KiwiWorkspaceQuerySet(models.QuerySet["KiwiWorkspace"]):
    def configure(self, config: Any) -> list[KiwiWorkspace]:
        """Make the workspaces of `settings.MC.kiwi` exist (and only those, of the configured ones)."""
        wanted: dict[str, dict[str, Any]] = {}
        if config.user_space:
            wanted[KiwiWorkspace.USER] = {
                "scope": KiwiWorkspace.Scope.USER,
                "root": config.user_space,
                "project_path": "",
                "server": "",
            }
        for entry in config.workspaces:
            wanted[entry.name] = {
                "scope": KiwiWorkspace.Scope.PROJECT,
                "root": str(Path(entry.project_path) / ".ai"),
                "project_path": entry.project_path,
                "server": entry.server,
            }
        self.filter(source=KiwiWorkspace.Source.CONFIG).exclude(name__in=wanted).delete()
        return [
            self.update_or_create(name=name, defaults={**fields, "source": KiwiWorkspace.Source.CONFIG})[0]
            for name, fields in wanted.items()
        ]

    def index_all(self) -> dict[str, IndexReport]:
        return {w.name: w.index() for w in self.order_by("name")}

    def for_call(self, server: str, project_path: str | None) -> list[KiwiWorkspace]:
        """Where a Kiwi server's `execute` looks, in order: the project the call names (or
        else the server's own projects), then the user space."""
        projects = self.filter(scope=KiwiWorkspace.Scope.PROJECT)
        if project_path:
            chosen = list(projects.filter(project_path=os.path.normpath(project_path)))
        else:
            chosen = list(projects.filter(server=server).order_by("name"))
        return chosen + list(self.filter(scope=KiwiWorkspace.Scope.USER).order_by("name"))


class KiwiWorkspace(models.Model):
    """One Kiwi `.ai/` folder: a project's, or the user space."""

    global_because = "workspaces are folders of the deployment, shared by every team"

    USER = "user"

    class Scope(models.TextChoices):
        PROJECT = "project"
        USER = "user"

    class Source(models.TextChoices):
        CONFIG = "config"
        ADMIN = "admin"

    name = models.SlugField(max_length=100, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.PROJECT)
    root = models.CharField(max_length=1000, help_text="The .ai folder itself.")
    project_path = models.CharField(
        max_length=1000,
        blank=True,
        help_text="The project folder (Kiwi's project_path); empty for the user space.",
    )
    server = models.CharField(
        max_length=200, blank=True, help_text="The Kiwi MCP server whose execute calls run in this project."
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ADMIN)
    indexed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last pass could not read the folder.")

    objects = KiwiWorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.project_path:
            self.project_path = os.path.normpath(self.project_path)
        super().save(*args, **kwargs)

    def files(self) -> Iterator[tuple[formats.ItemKind, Path, PurePosixPath]]:
        """(kind, file, its path below the kind's folder) for every item file, in a stable order."""
        root = Path(self.root)
        for folder, kind in FOLDERS:
            base = root / folder
            if not base.is_dir():
                continue
            for directory, dirs, names in os.walk(base):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
                for name in sorted(names):
                    path = Path(directory) / name
                    if name.startswith((".", "_")) or path.suffix in SKIPPED_SUFFIXES:
                        continue
                    if kind != "tool" and path.suffix != ".md":
                        continue
                    yield kind, path, PurePosixPath(path.relative_to(base).as_posix())

    def index(self) -> IndexReport:
        """Bring the items up to date with the folder (see the module docstring)."""
        report = IndexReport()
        root = Path(self.root)
        stored = {item.path: item for item in self.items.defer("data", "description")}
        seen: set[str] = set()
        self.last_error = "" if root.is_dir() else f"{root} is not a folder"
        for kind, path, below in self.files() if root.is_dir() else ():
            relative = path.relative_to(root).as_posix()
            seen.add(relative)
            try:
                stat = path.stat()
            except OSError as exc:
                report.errors[relative] = f"cannot read: {exc.strerror}"
                continue
            item = stored.get(relative)
            if item is not None and (item.mtime_ns, item.size) == (stat.st_mtime_ns, stat.st_size):
                report.unchanged += 1
                if item.error:
                    report.errors[relative] = item.error
                continue
            try:
                raw = path.read_bytes() if stat.st_size <= MAX_FILE_BYTES else b""
            except OSError as exc:
                raw, read_error = b"", f"cannot read: {exc.strerror}"
            else:
                read_error = "" if stat.st_size <= MAX_FILE_BYTES else f"larger than {MAX_FILE_BYTES} bytes"
            digest = hashlib.sha256(raw).hexdigest()
            if item is not None and not read_error and item.sha256 == digest:
                # Touched, not changed: nothing to parse again.
                item.mtime_ns, item.size = stat.st_mtime_ns, stat.st_size
                item.save(update_fields=["mtime_ns", "size"])
                report.unchanged += 1
                if item.error:
                    report.errors[relative] = item.error
                continue
            with transaction.atomic():
                item = self._store(item, kind, relative, below, raw, read_error, stat, digest)
            (report.updated if relative in stored else report.added).append(relative)
            if item.error:
                report.errors[relative] = item.error
        report.removed = sorted(set(stored) - seen)
        self.items.filter(path__in=report.removed).delete()
        self.indexed_at = timezone.now()
        self.save(update_fields=["indexed_at", "last_error"])
        return report

    def _store(
        self,
        item: KiwiItem | None,
        kind: formats.ItemKind,
        relative: str,
        below: PurePosixPath,
        raw: bytes,
        read_error: str,
        stat: os.stat_result,
        digest: str,
    ) -> KiwiItem:
        item = item or KiwiItem(workspace=self, path=relative)
        item.kind, item.mtime_ns, item.size, item.sha256 = kind, stat.st_mtime_ns, stat.st_size, digest
        item.indexed_at = timezone.now()
        parsed: formats.Parsed | None = None
        try:
            if read_error:
                raise formats.FormatError(read_error)
            parsed = formats.parse(kind, below, raw)
        except formats.FormatError as exc:
            item.name, item.version, item.title, item.category = below.stem, "", "", ""
            item.description, item.data, item.error = "", {}, str(exc)
        else:
            item.name, item.version, item.title = parsed.name[:300], parsed.version[:50], parsed.title[:300]
            item.description, item.category = parsed.description, parsed.category[:300]
            item.data, item.error = parsed.data, ""
        item.save()
        item.links.all().delete()
        if parsed is not None:
            KiwiLink.objects.bulk_create(
                [
                    KiwiLink(
                        source=item, kind=link.kind, target=link.target[:300], target_kind=link.target_kind
                    )
                    for link in {(lk.kind, lk.target): lk for lk in parsed.links}.values()
                ]
            )
        return item


class KiwiItemQuerySet(models.QuerySet["KiwiItem"]):
    def valid(self) -> Self:
        return self.filter(error="")

    def broken(self) -> Self:
        return self.exclude(error="")

    def resolve(self, kind: str, name: str, workspaces: Iterable[KiwiWorkspace]) -> KiwiItem | None:
        """The item Kiwi would find for `name`: in the first of `workspaces` that holds one."""
        order = [w.pk for w in workspaces]
        rows = self.valid().filter(kind=kind, name=name, workspace__in=order).select_related("workspace")
        found = {i.workspace_id: i for i in rows.order_by("-path")}  # the first path wins
        return next((found[w] for w in order if w in found), None)


class KiwiItem(models.Model):
    """One file of a workspace: a directive, tool or knowledge entry as parsed, or why it did not parse."""

    global_because = "a workspace's files are shared by every team"

    class Kind(models.TextChoices):
        DIRECTIVE = "directive"
        TOOL = "tool"
        KNOWLEDGE = "knowledge"

    workspace = models.ForeignKey(KiwiWorkspace, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=1000, help_text="Below the workspace's .ai folder.")
    name = models.CharField(
        max_length=300, help_text="The directive's or tool's name, the entry's zettel_id."
    )
    version = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="The parsed structure (formats.py).")
    error = models.TextField(blank=True, help_text="Why the file did not parse; empty if it did.")
    mtime_ns = models.BigIntegerField(default=0)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    indexed_at = models.DateTimeField(default=timezone.now)

    objects = KiwiItemQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "kind", "name", "path"]
        constraints = [models.UniqueConstraint(fields=["workspace", "path"], name="kiwi_item_path")]
        indexes = [models.Index(fields=["kind", "name"], name="kiwi_item_kind_name")]

    def __str__(self) -> str:
        return f"{self.workspace_id}/{self.path}"

    def get_absolute_url(self) -> str:
        return reverse("kiwi-item-page", args=[self.workspace.name, self.kind, self.name])

    @property
    def key(self) -> str:
        """Its graph key: `<workspace>/<name>` (the id is `kiwi_<kind>:<key>`)."""
        return f"{self.workspace.name}/{self.name}"

    @property
    def permissions(self) -> list[dict[str, Any]]:
        return list(self.data.get("permissions", [])) if self.kind == self.Kind.DIRECTIVE else []

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.data.get("steps", [])) if self.kind == self.Kind.DIRECTIVE else []

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "workspace": self.workspace.name,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description[:500],
            "category": self.category,
            "path": self.path,
            "error": self.error,
            "indexed_at": self.indexed_at.isoformat(),
        }


class KiwiLink(models.Model):
    """A relationship an item declares by name: a directive's requires/suggests/extends/related,
    an entry's references and [[mentions]]."""

    global_because = "links between shared workspace files"

    source = models.ForeignKey(KiwiItem, on_delete=models.CASCADE, related_name="links")
    kind = models.CharField(max_length=16)
    target = models.CharField(max_length=300)
    target_kind = models.CharField(
        max_length=16,
        blank=True,
        help_text="directive, knowledge, or empty: an entry, else a directive or tool.",
    )

    class Meta:
        ordering = ["source", "kind", "target"]
        constraints = [models.UniqueConstraint(fields=["source", "kind", "target"], name="kiwi_link_unique")]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.target}"
