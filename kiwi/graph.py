"""Kiwi workspaces in the relationship graph (see missioncontrol/graph.py).

Cost: a fixed number of queries per graph: the items (with their workspaces), their
links, and the run threads.

Entities: each indexed directive, tool and knowledge entry that parsed (`kiwi_directive`,
`kiwi_tool`, `kiwi_knowledge`, keyed `<workspace>/<name>`). Edges: a directive
`requires`/`suggests`/`extends`/`related` the directives its `<relationships>` name; an
entry `references` the entries (else directives, else tools) its frontmatter's
`references` and its `[[mentions]]` name; a thread `executed` the directive a Kiwi
`execute` call started it for (kiwi/runs.py).

A name resolves in the item's own workspace, then in the user space. One that resolves
nowhere is still an entity, in the naming item's workspace, marked `indexed: false`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from kiwi.models import KiwiItem, KiwiLink, KiwiWorkspace
from missioncontrol.graph import (
    Edge,
    EdgeKind,
    Entity,
    EntityKind,
    ListedProvider,
    edge,
    edges_at,
    entity,
    node_id,
    split_id,
)
from threads.models import Thread

KIND_OF_ITEM: dict[str, EntityKind] = {
    "directive": "kiwi_directive",
    "tool": "kiwi_tool",
    "knowledge": "kiwi_knowledge",
}
ITEM_OF_KIND = {v: k for k, v in KIND_OF_ITEM.items()}
RUN_KIND = "kiwi_directive"  # a run thread's execution_context.kind


def item_id(item: KiwiItem) -> str:
    return node_id(KIND_OF_ITEM[item.kind], item.key)


class KiwiProvider(ListedProvider):
    entity_kinds = ("kiwi_directive", "kiwi_tool", "kiwi_knowledge")
    edge_kinds = ("requires", "suggests", "extends", "related", "references", "executed")

    @cached_property
    def workspaces(self) -> dict[int, KiwiWorkspace]:
        # Those that hold an item: an empty one resolves no name.
        return {i.workspace_id: i.workspace for i in self.items}

    @cached_property
    def items(self) -> list[KiwiItem]:
        return list(KiwiItem.objects.valid().select_related("workspace"))

    @cached_property
    def by_name(self) -> dict[tuple[int, str, str], KiwiItem]:
        found: dict[tuple[int, str, str], KiwiItem] = {}
        for item in sorted(self.items, key=lambda i: i.path, reverse=True):  # the first path wins
            found[(item.workspace_id, item.kind, item.name)] = item
        return found

    @cached_property
    def resolved(self) -> list[tuple[str, KiwiItem, str]]:
        """(edge kind, source item, target entity id) for every declared link."""
        users = [w for w in self.workspaces.values() if w.scope == KiwiWorkspace.Scope.USER]
        items = {i.pk: i for i in self.items}
        found = []
        for link in KiwiLink.objects.filter(source__in=list(items)).order_by("source", "kind", "target"):
            source = items[link.source_id]
            order = [source.workspace_id, *(w.pk for w in users if w.pk != source.workspace_id)]
            kinds = [link.target_kind] if link.target_kind else ["knowledge", "directive", "tool"]
            target = next(
                (
                    self.by_name[(w, k, link.target)]
                    for k in kinds
                    for w in order
                    if (w, k, link.target) in self.by_name
                ),
                None,
            )
            if target is not None:
                found.append((link.kind, source, item_id(target)))
            else:
                missing_kind = KIND_OF_ITEM[link.target_kind or "knowledge"]
                found.append(
                    (link.kind, source, node_id(missing_kind, f"{source.workspace.name}/{link.target}"))
                )
        return found

    @cached_property
    def runs(self) -> list[tuple[str, str]]:
        """(thread id, directive entity id) of every run thread the user may see: one query."""
        threads = (
            Thread.objects.all() if self.graph.user is None else Thread.objects.visible_to(self.graph.user)
        )
        threads = threads.filter(execution_context__kind=RUN_KIND)
        pairs = []
        for thread_id, context in threads.order_by("id").values_list("id", "execution_context"):
            key = ((context or {}).get("kiwi") or {}).get("key")
            if isinstance(key, str) and key:
                pairs.append((thread_id, node_id("kiwi_directive", key)))
        return pairs

    def listing(self, kind: EntityKind) -> list[Entity]:
        wanted = ITEM_OF_KIND[kind]
        found = [_entity(item) for item in self.items if item.kind == wanted]
        known = {e["id"] for e in found}
        for missing in self.graph.referenced(kind) - known:
            key = split_id(missing)[1]
            workspace, _, name = key.partition("/")
            found.append(entity(kind, key, name, workspace=workspace, indexed=False))
        return found

    def edges(self, kind: EdgeKind, touching: str | None) -> list[Edge]:
        if kind == "executed":
            if touching is not None and not touching.startswith(("thread:", "kiwi_directive:")):
                return []
            found = [edge("executed", node_id("thread", t), d) for t, d in self.runs]
        else:
            found = [edge(kind, item_id(source), target) for k, source, target in self.resolved if k == kind]
        found.sort(key=lambda e: (e["source"], e["target"]))
        return edges_at(found, touching)

    def references(self, kind: EntityKind) -> set[str]:
        if kind not in self.entity_kinds:
            return set()
        ids = {target for _, _, target in self.resolved if target.startswith(f"{kind}:")}
        if kind == "kiwi_directive":
            ids |= {d for _, d in self.runs}
        return ids


def _entity(item: KiwiItem) -> Entity:
    data: dict[str, Any] = {
        "workspace": item.workspace.name,
        "path": item.path,
        "version": item.version,
        "category": item.category,
        "indexed": True,
    }
    if item.kind == "directive":
        data["permissions"] = item.permissions
        data["steps"] = [s.get("name", "") for s in item.steps]
    elif item.kind == "knowledge":
        data["entry_type"] = item.data.get("entry_type", "")
        data["tags"] = item.data.get("tags", [])
    else:
        data["tool_type"] = item.data.get("tool_type", "")
    return entity(
        KIND_OF_ITEM[item.kind],
        item.key,
        item.name,
        title=item.title,
        description=item.description[:500],
        **data,
    )
