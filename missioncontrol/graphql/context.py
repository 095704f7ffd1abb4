"""The context of one GraphQL request: the request itself and the DataLoaders of its reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from strawberry.dataloader import DataLoader
from strawberry.django.context import StrawberryDjangoContext

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Context(StrawberryDjangoContext):
    # Batch function -> its loader. Per request, so nothing is cached across requests.
    loaders: dict[Callable[..., Any], DataLoader[Any, Any]] = field(default_factory=dict)

    def loader(self, load: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
        """This request's DataLoader for the batch function `load`.

        Every `load(key)` awaited in the same tick of the event loop (the children of
        one list, say) reaches `load` as one list of keys: one query, not one per row.
        """
        if load not in self.loaders:
            self.loaders[load] = DataLoader(load_fn=load)
        return cast(DataLoader[K, V], self.loaders[load])
