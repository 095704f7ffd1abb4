"""Directives (YAML workflows over scripts and tools) and the knowledge they produce."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Self

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from automations import definition
from automations.definition import ToolRef


class DirectiveQuerySet(models.QuerySet["Directive"]):
    def upsert_from_yaml(self, text: str, *, system: bool = False) -> Directive:
        """Create or replace the directive that `text` defines (keyed by its name).

        A user's directive may not replace one shipped with Mission Control: the system
        loader would overwrite it again on its next run.
        """
        parsed = definition.parse(text)
        name = parsed["name"]
        if not system and self.filter(name=name, system=True).exists():
            raise ValueError(f"{name!r} is a system directive; give yours another name")
        directive = self.filter(name=name).first() or Directive(name=name)
        directive.apply(text, parsed)
        directive.system = system
        directive.save()
        return directive

    def enabled(self) -> Self:
        return self.filter(enabled=True)


class Directive(models.Model):
    """A named YAML workflow of script, tool, foreach and conditional steps."""

    name = models.SlugField(max_length=100, unique=True)
    version = models.CharField(max_length=50, blank=True)
    description = models.TextField(blank=True)
    source = models.TextField(help_text="The directive's YAML.")
    definition = models.JSONField(default=dict, blank=True, help_text="The YAML, parsed.")
    system = models.BooleanField(default=False, help_text="Shipped with Mission Control.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DirectiveQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("directive-page", args=[self.name])

    def apply(self, text: str, parsed: dict[str, Any] | None = None) -> None:
        """Set source, definition and the fields read from it; ValueError if `text` is invalid."""
        parsed = definition.parse(text) if parsed is None else parsed
        self.source = text
        self.definition = parsed
        self.name = parsed["name"]
        self.version = str(parsed.get("version") or "")[:50]
        self.description = str(parsed.get("description") or "")

    def clean(self) -> None:
        # The admin edits `source`; everything else follows from it.
        try:
            self.apply(self.source)
        except ValueError as exc:
            raise ValidationError({"source": str(exc)}) from None
        if Directive.objects.exclude(pk=self.pk).filter(name=self.name).exists():
            raise ValidationError({"source": f"a directive named {self.name!r} already exists"})

    def steps(self) -> Iterator[dict[str, Any]]:
        """Every step, nested ones included, depth first."""
        return definition.walk(self.definition.get("steps") or [])

    def script_names(self) -> list[str]:
        """The scripts the directive runs, in order of first appearance."""
        names = (definition.script_name(step) for step in self.steps())
        return list(dict.fromkeys(n for n in names if n))

    def tool_refs(self) -> list[ToolRef]:
        """The (server, tool) pairs the directive calls, in order of first appearance."""
        refs = (definition.tool_ref(step) for step in self.steps())
        return list(dict.fromkeys(r for r in refs if r))


# `[[slug]]` names another entry explicitly.
WIKI_LINK = re.compile(r"\[\[\s*([^\[\]]+?)\s*\]\]")


class KnowledgeEntryQuerySet(models.QuerySet["KnowledgeEntry"]):
    def record(
        self,
        slug: str,
        *,
        title: str,
        category: str,
        content: str,
        confidence: float,
        source_directive: str | None = None,
    ) -> tuple[KnowledgeEntry, bool]:
        """Create or update the entry keyed by `slug`: a re-run refreshes it, never duplicates it.

        `source_directive` is a directive's name; an unknown name leaves the link empty.
        Answers (entry, created).
        """
        directive = Directive.objects.filter(name=source_directive).first() if source_directive else None
        return self.update_or_create(
            slug=slugify(slug)[:300],
            defaults={
                "title": title[:300],
                "category": category,
                "content": content,
                "confidence": min(1.0, max(0.0, float(confidence))),
                "source_directive": directive,
            },
        )


class KnowledgeEntry(models.Model):
    """Something Mission Control learned: a pattern, an optimization, an alert, a practice."""

    class Category(models.TextChoices):
        PATTERN = "pattern"
        OPTIMIZATION = "optimization"
        ALERT = "alert"
        BEST_PRACTICE = "best_practice", "Best practice"

    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=300, unique=True, blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.PATTERN)
    content = models.TextField(blank=True, help_text="Mention another entry as [[its-slug]] or by title.")
    confidence = models.FloatField(default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)])
    source_directive = models.ForeignKey(
        Directive,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="knowledge",
        help_text="The directive that produced this entry.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = KnowledgeEntryQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "knowledge entries"
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1), name="knowledge_confidence_0_1"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = slugify(self.title)[:300]
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("knowledge-page", args=[self.slug])

    @staticmethod
    def links(entries: Iterable[KnowledgeEntry]) -> list[tuple[str, str]]:
        """(from slug, to slug) for each entry that mentions another among `entries`.

        A mention is `[[slug]]`, or the other entry's exact title as a whole phrase
        (case-sensitive, not inside a longer word). An entry never links to itself.
        """
        entries = list(entries)
        slugs = {e.slug for e in entries}
        titles = [(e.slug, re.compile(rf"(?<!\w){re.escape(e.title)}(?!\w)")) for e in entries if e.title]
        links: list[tuple[str, str]] = []
        for entry in entries:
            targets = {s for s in WIKI_LINK.findall(entry.content) if s in slugs}
            targets |= {slug for slug, title in titles if title.search(entry.content)}
            links += [(entry.slug, target) for target in sorted(targets - {entry.slug})]
        return links
