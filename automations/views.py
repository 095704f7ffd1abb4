"""Directive and knowledge pages over the automations models."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from automations.models import Directive, KnowledgeEntry


@login_required
def directive_list(request: HttpRequest) -> HttpResponse:
    directives = Directive.objects.annotate(knowledge_count=Count("knowledge")).order_by("name")
    return render(request, "automations/directives.html", {"directives": directives})


@login_required
def directive_page(request: HttpRequest, name: str) -> HttpResponse:
    directive = get_object_or_404(Directive, name=name)
    context = {
        "directive": directive,
        "steps": list(directive.steps()),
        "scripts": directive.script_names(),
        "tools": directive.tool_refs(),
        "knowledge": directive.knowledge.order_by("title"),
    }
    return render(request, "automations/directive.html", context)


@login_required
def knowledge_list(request: HttpRequest) -> HttpResponse:
    entries = KnowledgeEntry.objects.select_related("source_directive").order_by("category", "title")
    category = request.GET.get("category", "")
    if category in KnowledgeEntry.Category.values:
        entries = entries.filter(category=category)
    context = {"entries": entries, "categories": KnowledgeEntry.Category.choices, "category": category}
    return render(request, "automations/knowledge_list.html", context)


@login_required
def knowledge_page(request: HttpRequest, slug: str) -> HttpResponse:
    entry = get_object_or_404(KnowledgeEntry.objects.select_related("source_directive"), slug=slug)
    everything = list(KnowledgeEntry.objects.only("slug", "title", "content"))
    pairs = KnowledgeEntry.links(everything)
    links = {target for source, target in pairs if source == entry.slug}
    backlinks = {source for source, target in pairs if target == entry.slug}
    by_slug = {e.slug: e for e in everything}
    context = {
        "entry": entry,
        "links": [by_slug[s] for s in sorted(links) if s in by_slug],
        "backlinks": [by_slug[s] for s in sorted(backlinks) if s in by_slug],
    }
    return render(request, "automations/knowledge.html", context)
