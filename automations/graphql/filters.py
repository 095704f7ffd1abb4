"""GraphQL filters of directives and knowledge entries."""

from __future__ import annotations

import strawberry_django
from django.db.models import Q

from automations.models import Directive, KnowledgeEntry


@strawberry_django.filter_type(Directive)
class DirectiveFilter:
    """Directives matching every given filter."""

    @strawberry_django.filter_field(description="True: shipped with Mission Control; false: a user's.")
    def system(self, value: bool, prefix: str) -> Q:
        return Q(**{f"{prefix}system": value})

    @strawberry_django.filter_field
    def enabled(self, value: bool, prefix: str) -> Q:
        return Q(**{f"{prefix}enabled": value})

    @strawberry_django.filter_field(description="This text in the name or description, any case.")
    def search(self, value: str, prefix: str) -> Q:
        return Q(**{f"{prefix}name__icontains": value}) | Q(**{f"{prefix}description__icontains": value})


@strawberry_django.filter_type(KnowledgeEntry)
class KnowledgeEntryFilter:
    """Knowledge entries matching every given filter; a list matches any of its values."""

    @strawberry_django.filter_field(
        description="Any of these categories: pattern, optimization, alert, best_practice."
    )
    def categories(self, value: list[str], prefix: str) -> Q:
        return Q(**{f"{prefix}category__in": value})

    @strawberry_django.filter_field(description="Confidence at least this, from 0 to 1.")
    def min_confidence(self, value: float, prefix: str) -> Q:
        return Q(**{f"{prefix}confidence__gte": value})

    @strawberry_django.filter_field(description="Produced by the directive with this name.")
    def source_directive(self, value: str, prefix: str) -> Q:
        return Q(**{f"{prefix}source_directive__name": value})

    @strawberry_django.filter_field(description="This text in the title or content, any case.")
    def search(self, value: str, prefix: str) -> Q:
        return Q(**{f"{prefix}title__icontains": value}) | Q(**{f"{prefix}content__icontains": value})
