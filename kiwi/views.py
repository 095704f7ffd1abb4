"""Kiwi pages: the workspaces' items and index errors, and one item's parsed structure,
relationships and (for a directive) its runs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from kiwi.graph import KIND_OF_ITEM, item_id
from kiwi.models import KiwiItem, KiwiWorkspace
from missioncontrol.graph import Graph, split_id
from missioncontrol.pages import visible
from threads.models import Thread

RUNS_SHOWN = 50


@login_required
def item_list(request: HttpRequest) -> HttpResponse:
    items = KiwiItem.objects.select_related("workspace").defer("description", "data")
    kind = request.GET.get("kind", "")
    if kind in KiwiItem.Kind.values:
        items = items.filter(kind=kind)
    context = {
        "workspaces": KiwiWorkspace.objects.all(),
        "items": items.valid().order_by("kind", "name", "workspace__name"),
        "broken": KiwiItem.objects.broken().select_related("workspace").order_by("workspace__name", "path"),
        "kinds": KiwiItem.Kind.choices,
        "kind": kind,
    }
    return render(request, "kiwi/items.html", context)


@login_required
def item_page(request: HttpRequest, workspace: str, kind: str, name: str) -> HttpResponse:
    items = KiwiItem.objects.valid().select_related("workspace").order_by("path")
    item = items.filter(workspace__name=workspace, kind=kind, name=name).first()
    if item is None:
        item = get_object_or_404(items, workspace__name=workspace, kind=kind, name=name)
    node = item_id(item)
    graph = Graph(user=request.user)
    _, edges = graph.relationships(entity_id=node, limit=500)
    related = []
    for e in edges:
        if e["kind"] == "executed":
            continue
        other = e["target"] if e["source"] == node else e["source"]
        other_kind, key = split_id(other)
        ws, _, other_name = key.partition("/")
        found = graph.get(other)
        related.append(
            {
                "kind": e["kind"],
                "outgoing": e["source"] == node,
                "id": other,
                "name": other_name or key,
                "workspace": ws,
                "item_kind": other_kind.removeprefix("kiwi_"),
                "indexed": bool(found and found["data"].get("indexed")),
            }
        )
    runs = (
        visible(request, Thread.objects.filter(execution_context__kind="kiwi_directive"))
        .filter(execution_context__kiwi__key=item.key)
        .order_by("-started_at")[:RUNS_SHOWN]
        if kind == "directive"
        else []
    )
    context = {
        "item": item,
        "node": node,
        "related": related,
        "runs": runs,
        "entity_kind": KIND_OF_ITEM[kind],
    }
    return render(request, "kiwi/item.html", context)
