"""Every list of the schema is paged and in a fixed order.

Root lists are `OffsetPaginated` (results, totalCount, pageInfo), ordered by their
resolver. Lists nested in a type (a thread's steps, a server's health checks) are
`paged_list` fields: in their own order, they take a `pagination` argument and, without
one, hold the default page. The optimizer turns that page into a window over the one
prefetch query of the relation, so a page of threads with their steps stays one query
per relation however many threads it holds. Default and cap are strawberry-django's
PAGINATION_DEFAULT_LIMIT and PAGINATION_MAX_LIMIT.
"""

from __future__ import annotations

from typing import Any, Self, TypeVar

import strawberry_django
from django.db.models import QuerySet
from strawberry.types import Info
from strawberry_django.fields.field import StrawberryDjangoField
from strawberry_django.optimizer import is_optimized_by_prefetching
from strawberry_django.pagination import OffsetPaginationInput
from strawberry_django.settings import strawberry_django_settings

from missioncontrol.visibility import visible_rows

_QS = TypeVar("_QS", bound=QuerySet[Any])


def page_bounds(pagination: OffsetPaginationInput | None) -> tuple[int, int | None]:
    """(offset, limit) to serve for `pagination`: the default page when absent, never past the cap.

    For lists the ORM cannot prefetch (a thread's logs); strawberry-django bounds the others.
    """
    settings = strawberry_django_settings()
    default, cap = settings["PAGINATION_DEFAULT_LIMIT"], settings["PAGINATION_MAX_LIMIT"]
    offset = max(pagination.offset, 0) if pagination else 0
    requested = pagination.limit if pagination else None
    limit = requested if isinstance(requested, int) and requested >= 0 else default
    if cap is not None and (limit is None or limit > cap):
        limit = cap
    return offset, limit


class PagedListField(StrawberryDjangoField):
    """A related list in a fixed order that serves one page even when the client asks for none."""

    order_by: tuple[str, ...] = ()

    def __copy__(self) -> Self:
        new_field = super().__copy__()
        new_field.order_by = self.order_by
        return new_field

    def get_queryset(self, queryset: _QS, info: Info, **kwargs: Any) -> _QS:
        # A prefetched queryset already holds its page; ordering it again would re-query.
        if self.order_by and not is_optimized_by_prefetching(queryset):
            queryset = queryset.order_by(*self.order_by)
        return super().get_queryset(queryset, info, **kwargs)

    def apply_pagination(
        self,
        queryset: _QS,
        pagination: object | None = None,
        *,
        related_field_id: str | None = None,
    ) -> _QS:
        return super().apply_pagination(
            queryset, pagination or OffsetPaginationInput(), related_field_id=related_field_id
        )


def paged_list(*order_by: str, description: str | None = None) -> Any:
    """A related list field ordered by `order_by`, paged like the root lists."""
    field = strawberry_django.field(field_cls=PagedListField, pagination=True, description=description)
    field.order_by = order_by
    return field


def visible(queryset: _QS, info: Info) -> _QS:
    """`queryset` narrowed to what the request's user may see (its model's `visible_to`)."""
    return visible_rows(queryset, info.context.request.user)
