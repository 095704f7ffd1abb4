"""Directives, scripts and knowledge in the relationship graph (see missioncontrol/graph.py).

A directive `runs` the scripts and `calls` the tools its steps name, and `produced` the
knowledge entries that name it as their source; an entry `references` the entries its
content mentions.
"""

from __future__ import annotations

from functools import cached_property

from automations import scripts
from automations.models import Directive, KnowledgeEntry
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
    tool_key,
)


class AutomationProvider(ListedProvider):
    entity_kinds = ("directive", "script", "knowledge")
    edge_kinds = ("runs", "calls", "produced", "references")

    @cached_property
    def directives(self) -> list[Directive]:
        return list(
            Directive.objects.only("name", "version", "description", "definition", "system", "enabled")
        )

    @cached_property
    def knowledge(self) -> list[KnowledgeEntry]:
        user = self.graph.user
        entries = KnowledgeEntry.objects.all() if user is None else KnowledgeEntry.objects.visible_to(user)
        return list(
            entries.select_related("source_directive").only(
                "slug", "title", "category", "content", "confidence", "source_directive__name"
            )
        )

    def listing(self, kind: EntityKind) -> list[Entity]:
        if kind == "directive":
            return [
                entity(
                    "directive",
                    d.name,
                    d.name,
                    description=d.description,
                    version=d.version,
                    system=d.system,
                    enabled=d.enabled,
                )
                for d in self.directives
            ]
        if kind == "script":
            registered = scripts.registry()
            found = [
                entity(
                    "script",
                    s.name,
                    s.name,
                    description=s.description,
                    permissions=list(s.permissions),
                    parameters=s.parameters(),
                    registered=True,
                )
                for s in registered.values()
            ]
            missing = {split_id(i)[1] for i in self.graph.referenced("script")} - registered.keys()
            return found + [entity("script", name, name, registered=False) for name in missing]
        return [
            entity(
                "knowledge",
                k.slug,
                k.slug,
                title=k.title,
                description=k.content,
                category=k.category,
                confidence=k.confidence,
                source_directive=k.source_directive.name if k.source_directive else None,
            )
            for k in self.knowledge
        ]

    def edges(self, kind: EdgeKind, touching: str | None) -> list[Edge]:
        found: list[Edge] = []
        if kind == "runs":
            for d in self.directives:
                found += [
                    edge("runs", node_id("directive", d.name), node_id("script", s)) for s in d.script_names()
                ]
        elif kind == "calls":
            for d in self.directives:
                found += [
                    edge("calls", node_id("directive", d.name), node_id("tool", tool_key(*ref)))
                    for ref in d.tool_refs()
                ]
        elif kind == "produced":
            found = [
                edge("produced", node_id("directive", k.source_directive.name), node_id("knowledge", k.slug))
                for k in self.knowledge
                if k.source_directive
            ]
        else:
            found = [
                edge("references", node_id("knowledge", a), node_id("knowledge", b))
                for a, b in KnowledgeEntry.links(self.knowledge)
            ]
        found.sort(key=lambda e: (e["source"], e["target"]))
        return edges_at(found, touching)

    def references(self, kind: EntityKind) -> set[str]:
        if kind == "script":
            return {node_id("script", s) for d in self.directives for s in d.script_names()}
        if kind == "tool":
            return {node_id("tool", tool_key(*ref)) for d in self.directives for ref in d.tool_refs()}
        return set()
