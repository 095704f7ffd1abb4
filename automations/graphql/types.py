"""GraphQL types of directives and the knowledge they produced."""

from __future__ import annotations

from typing import Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.types import Info

from automations.models import Directive, KnowledgeEntry
from missioncontrol.graphql.pagination import paged_list, visible


@strawberry.type
class ToolRefType:
    """A tool a directive calls: its server's id and the tool's name there."""

    server: str
    tool: str


@strawberry_django.type(KnowledgeEntry)
class KnowledgeEntryType:
    id: strawberry.ID
    title: auto
    slug: auto
    category: auto
    content: auto
    confidence: auto
    source_directive: DirectiveType | None
    shared: auto
    created_at: auto
    updated_at: auto

    @classmethod
    def get_queryset(cls, queryset: QuerySet[Any], info: Info, **kwargs: Any) -> QuerySet[Any]:
        """Wherever it is reached (root, a directive's knowledge), only what the user may see."""
        return visible(queryset, info)


@strawberry_django.type(Directive)
class DirectiveType:
    id: strawberry.ID
    name: auto
    version: auto
    description: auto
    source: auto
    definition: auto
    system: auto
    enabled: auto
    created_at: auto
    updated_at: auto
    knowledge: list[KnowledgeEntryType] = paged_list(
        "-updated_at", "slug", description="The knowledge it produced, latest updated first."
    )

    # Both read the parsed definition already loaded with the row: no query of their own.
    @strawberry_django.field(
        only=["definition"], description="The scripts it runs, in order of first appearance."
    )
    def script_names(self, root: Directive) -> list[str]:
        return root.script_names()

    @strawberry_django.field(
        only=["definition"], description="The tools it calls, in order of first appearance."
    )
    def tool_refs(self, root: Directive) -> list[ToolRefType]:
        return [ToolRefType(server=ref.server, tool=ref.tool) for ref in root.tool_refs()]
