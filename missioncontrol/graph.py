"""The relationship graph: entities and the edges between them, derived from the data.

Nothing here is stored. Each app contributes a `Provider` for the kinds it owns
(`mcps/graph.py`: servers, tools; `threads/graph.py`: threads; `automations/graph.py`:
directives, scripts, knowledge; `kiwi/graph.py`: a Kiwi workspace's directives, tools and
knowledge), and `Graph` composes them for one request. An entity kind has one provider;
an edge kind may have several (Mission Control's knowledge and Kiwi's both reference).

Ids are stable and say their kind: `server:<id>`, `tool:<server id>/<name>`,
`thread:<id>`, `directive:<name>`, `script:<name>`, `knowledge:<slug>`,
`kiwi_directive:<workspace>/<name>`, `kiwi_tool:<workspace>/<name>`,
`kiwi_knowledge:<workspace>/<zettel id>`.

Every edge ends at an entity. Tools and scripts are referred to by name (a step's
details, a directive's YAML), so one may be referred to that no catalog or registry
holds; such a one is still an entity, marked `in_catalog: false` / `registered: false`.
Edges to a thread that is not stored (a child whose parent has not arrived) are left
out until it is.

Cost: kinds that stay small (servers, tools, directives, scripts, knowledge) are read
whole, once per `Graph`; threads, which run to tens of thousands, are counted, paged and
searched in the database, and their edges come from one aggregate query per kind. So a
request makes a fixed number of queries however many threads there are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, TypedDict, TypeVar, get_args

from django.utils.module_loading import import_string

EntityKind = Literal[
    "server",
    "tool",
    "thread",
    "directive",
    "script",
    "knowledge",
    "kiwi_directive",
    "kiwi_tool",
    "kiwi_knowledge",
]
EdgeKind = Literal[
    "provides",
    "child_of",
    "used",
    "runs",
    "calls",
    "produced",
    "references",
    "requires",
    "suggests",
    "extends",
    "related",
    "executed",
]
ENTITY_KINDS: tuple[EntityKind, ...] = get_args(EntityKind)
EDGE_KINDS: tuple[EdgeKind, ...] = get_args(EdgeKind)

K = TypeVar("K", bound=str)

PROVIDERS = (
    "mcps.graph.MCPProvider",
    "threads.graph.ThreadProvider",
    "automations.graph.AutomationProvider",
    "kiwi.graph.KiwiProvider",
)


class Entity(TypedDict):
    id: str
    kind: EntityKind
    name: str
    title: str
    description: str
    data: dict[str, Any]


class Edge(TypedDict):
    source: str
    target: str
    kind: EdgeKind
    weight: int


def node_id(kind: EntityKind, key: str) -> str:
    return f"{kind}:{key}"


def tool_key(server_id: str, tool: str) -> str:
    return f"{server_id}/{tool}"


def split_id(entity_id: str) -> tuple[EntityKind, str]:
    """(kind, key) of an entity id; ValueError if it is not `<kind>:<key>`."""
    kind, sep, key = entity_id.partition(":")
    if not sep or not key:
        raise ValueError(f"expected <kind>:<key>, such as thread:T-1, not {entity_id!r}")
    for known in ENTITY_KINDS:
        if kind == known:
            return known, key
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(ENTITY_KINDS)}")


def entity(
    kind: EntityKind, key: str, name: str, *, title: str = "", description: str = "", **data: Any
) -> Entity:
    return {
        "id": node_id(kind, key),
        "kind": kind,
        "name": name,
        "title": title,
        "description": description,
        "data": data,
    }


def edge(kind: EdgeKind, source: str, target: str, weight: int = 1) -> Edge:
    return {"source": source, "target": target, "kind": kind, "weight": weight}


def edges_at(edges: Iterable[Edge], entity_id: str | None) -> list[Edge]:
    """The edges that start or end at `entity_id` (all of them if None)."""
    if entity_id is None:
        return list(edges)
    return [e for e in edges if entity_id in (e["source"], e["target"])]


# Search ranks, best first.
EXACT, PREFIX, CONTAINS, DESCRIPTION = range(4)


def rank(text: str, names: Sequence[str], description: str) -> int | None:
    """How well `text` matches: an exact name, a name's prefix, inside a name, inside the description."""
    text = text.casefold()
    names = [n.casefold() for n in names if n]
    if text in names:
        return EXACT
    if any(n.startswith(text) for n in names):
        return PREFIX
    if any(text in n for n in names):
        return CONTAINS
    return DESCRIPTION if text in description.casefold() else None


class Provider(ABC):
    """One app's part of the graph: its entity kinds, read by query, and its edges."""

    entity_kinds: ClassVar[tuple[EntityKind, ...]] = ()
    edge_kinds: ClassVar[tuple[EdgeKind, ...]] = ()

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    @abstractmethod
    def count(self, kind: EntityKind) -> int:
        """How many entities of `kind` there are."""

    @abstractmethod
    def page(self, kind: EntityKind, offset: int, limit: int) -> list[Entity]:
        """Entities of `kind` from `offset`, at most `limit`, in a stable order."""

    @abstractmethod
    def get(self, kind: EntityKind, entity_id: str) -> Entity | None:
        """The entity with id `entity_id`, if there is one."""

    @abstractmethod
    def search(self, kind: EntityKind, text: str, limit: int) -> tuple[int, list[tuple[int, Entity]]]:
        """(how many match, the best `limit` of them with their rank)."""

    @abstractmethod
    def edges(self, kind: EdgeKind, touching: str | None) -> list[Edge]:
        """The edges of `kind`, only those at entity `touching` if given, in a stable order."""

    def references(self, kind: EntityKind) -> set[str]:
        """Ids of entities of `kind` this provider's edges point at (see Graph.referenced)."""
        return set()


class ListedProvider(Provider):
    """A provider whose kinds are small enough to list whole: `listing(kind)` is read
    once per graph and counted, paged, looked up and searched in memory."""

    def __init__(self, graph: Graph) -> None:
        super().__init__(graph)
        self._listed: dict[EntityKind, dict[str, Entity]] = {}

    @abstractmethod
    def listing(self, kind: EntityKind) -> list[Entity]:
        """Every entity of `kind`."""

    def listed(self, kind: EntityKind) -> dict[str, Entity]:
        if kind not in self._listed:
            self._listed[kind] = {e["id"]: e for e in sorted(self.listing(kind), key=lambda e: e["id"])}
        return self._listed[kind]

    def count(self, kind: EntityKind) -> int:
        return len(self.listed(kind))

    def page(self, kind: EntityKind, offset: int, limit: int) -> list[Entity]:
        return list(self.listed(kind).values())[offset : offset + limit]

    def get(self, kind: EntityKind, entity_id: str) -> Entity | None:
        return self.listed(kind).get(entity_id)

    def search(self, kind: EntityKind, text: str, limit: int) -> tuple[int, list[tuple[int, Entity]]]:
        found = []
        for e in self.listed(kind).values():
            r = rank(text, (e["name"], e["title"], split_id(e["id"])[1]), e["description"])
            if r is not None:
                found.append((r, e))
        found.sort(key=lambda m: (m[0], m[1]["id"]))
        return len(found), found[:limit]


class Graph:
    """The graph as one request (one user) sees it; providers cache what they read for its lifetime."""

    def __init__(self, providers: Iterable[str] = PROVIDERS, user: Any = None) -> None:
        # With `user`, threads (and what only they tell: tool uses) are those it may see.
        self.user = user
        self.providers: list[Provider] = [import_string(path)(self) for path in providers]
        self._owner = {k: p for p in self.providers for k in p.entity_kinds}
        self._edge_owners: dict[EdgeKind, list[Provider]] = {}
        for p in self.providers:
            for k in p.edge_kinds:
                self._edge_owners.setdefault(k, []).append(p)
        self._referenced: dict[EntityKind, set[str]] = {}

    def referenced(self, kind: EntityKind) -> set[str]:
        """Ids of `kind` that any provider's edges point at, whether or not anything lists them."""
        if kind not in self._referenced:
            self._referenced[kind] = set().union(*(p.references(kind) for p in self.providers))
        return self._referenced[kind]

    def entities(
        self, kinds: Sequence[EntityKind] = ENTITY_KINDS, offset: int = 0, limit: int = 1000
    ) -> tuple[int, list[Entity]]:
        """(how many entities of `kinds` there are, a page of them), kind by kind."""
        total, results = 0, []
        for kind in _ordered(kinds, ENTITY_KINDS):
            provider = self._owner[kind]
            n = provider.count(kind)
            start = max(0, offset - total)
            if len(results) < limit and start < n:
                results += provider.page(kind, start, limit - len(results))
            total += n
        return total, results

    def relationships(
        self,
        kinds: Sequence[EdgeKind] = EDGE_KINDS,
        entity_id: str | None = None,
        offset: int = 0,
        limit: int = 1000,
    ) -> tuple[int, list[Edge]]:
        edges = [
            e
            for kind in _ordered(kinds, EDGE_KINDS)
            for owner in self._edge_owners.get(kind, [])
            for e in owner.edges(kind, entity_id)
        ]
        return len(edges), edges[offset : offset + limit]

    def get(self, entity_id: str) -> Entity | None:
        try:
            kind, _ = split_id(entity_id)
        except ValueError:
            return None
        return self._owner[kind].get(kind, entity_id)

    def search(
        self, text: str, kinds: Sequence[EntityKind] = ENTITY_KINDS, limit: int = 50
    ) -> tuple[int, list[Entity]]:
        """(how many entities match `text`, the best `limit`): by rank, then kind, then name."""
        total, found = 0, []
        for kind in _ordered(kinds, ENTITY_KINDS):
            n, ranked = self._owner[kind].search(kind, text, limit)
            total += n
            found += [(r, ENTITY_KINDS.index(kind), e["name"].casefold(), e["id"], e) for r, e in ranked]
        found.sort(key=lambda m: m[:4])
        return total, [m[-1] for m in found[:limit]]


def _ordered(kinds: Iterable[K], order: tuple[K, ...]) -> list[K]:
    wanted = set(kinds)
    return [k for k in order if k in wanted]
