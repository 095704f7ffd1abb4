"""The directive and knowledge queries of the root schema."""

from __future__ import annotations

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.pagination import OffsetPaginated

from automations.graphql.filters import DirectiveFilter, KnowledgeEntryFilter
from automations.graphql.types import DirectiveType, KnowledgeEntryType
from automations.models import Directive, KnowledgeEntry


@strawberry.type
class AutomationsQuery:
    @strawberry_django.field(description="The directive with this name, or null.")
    def directive(self, name: str) -> DirectiveType | None:
        return Directive.objects.filter(name=name)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[DirectiveType], filters=DirectiveFilter, description="Directives, by name."
    )
    def directives(self) -> QuerySet[Directive]:
        return Directive.objects.order_by("name")

    @strawberry_django.field(description="The knowledge entry with this slug, or null.")
    def knowledge_entry(self, info: Info, slug: str) -> KnowledgeEntryType | None:
        return KnowledgeEntry.objects.visible_to(info.context.request.user).filter(slug=slug)  # type: ignore[return-value]

    @strawberry_django.offset_paginated(
        OffsetPaginated[KnowledgeEntryType],
        filters=KnowledgeEntryFilter,
        description="Knowledge entries you may see (automations.scope), latest updated first.",
    )
    def knowledge_entries(self, info: Info) -> QuerySet[KnowledgeEntry]:
        return KnowledgeEntry.objects.visible_to(info.context.request.user).order_by("-updated_at", "slug")
