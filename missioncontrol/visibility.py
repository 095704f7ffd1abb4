"""The one gate rows pass on their way to a user: their model's `visible_to(user)`.

REST lists and details, the pages, GraphQL and search read through `visible_rows`. A
model whose rows belong to no team (servers, directives: shared by every team) says so
in a class attribute, `global_because = "<why>"`. A model with neither is a mistake that
fails loudly (ImproperlyConfigured), never a list that quietly shows every team's rows.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def visible_rows(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    """The rows of `queryset` `user` may see.

    The model's own QuerySet method is applied even to a plain QuerySet (GraphQL's
    optimizer hands those to a type's `get_queryset` for a relation's prefetch).
    """
    model = queryset.model
    own = type(model._default_manager.all())
    if hasattr(own, "visible_to"):
        if not isinstance(queryset, own):
            # A clone of the same query with the model's QuerySet methods (ours add no state).
            queryset = queryset._chain()
            queryset.__class__ = own
        return queryset.visible_to(user)  # type: ignore[attr-defined,no-any-return]
    if getattr(model, "global_because", ""):
        return queryset
    raise ImproperlyConfigured(
        f"{model._meta.label} has no visible_to(user) on its QuerySet and no `global_because`: "
        "say whose rows it holds before listing them"
    )


def is_scoped(model: type[Model]) -> bool:
    """Whether `model`'s rows are narrowed per user (it has a `visible_to`)."""
    return hasattr(type(model._default_manager.all()), "visible_to")


class VisibleRowsAdmin:
    """A ModelAdmin (or inline) mixin: its changelist, change pages, actions and exports
    hold only the rows the signed-in user may see. Admins see every team's anyway; a
    staff member of another role sees the admin as they see the API."""

    def get_queryset(self, request: Any) -> QuerySet[Any]:
        return visible_rows(super().get_queryset(request), request.user)  # type: ignore[misc]
