"""Full-text matching with one syntax on both databases.

PostgreSQL answers with `websearch_to_tsquery` (the `websearch` lookup, backed by GIN
indexes); the embedded SQLite default answers the same syntax with LIKE: every word
must appear, `"a phrase"` must appear as written, `-word` must not appear, and `or`
between two terms accepts either. Matching is case-insensitive on both.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db import connection, models
from django.db.models import Func, Lookup, Q, Value

# The GIN indexes behind full-text search (logs 0002, threads 0002) are created on
# PostgreSQL only, over exactly the expression below, so that the planner uses them.
FTS_CONFIG = "simple"


@models.TextField.register_lookup
class WebSearch(Lookup):
    """`message__websearch="disk -warning"`: PostgreSQL full-text search (websearch syntax)."""

    lookup_name = "websearch"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = f"to_tsvector('{FTS_CONFIG}', {lhs}) @@ websearch_to_tsquery('{FTS_CONFIG}', {rhs})"
        return sql, [*lhs_params, *rhs_params]


class Rank(Func):
    """ts_rank of `field` against the websearch query: higher is more relevant (PostgreSQL)."""

    output_field = models.FloatField()
    template = (
        f"ts_rank(to_tsvector('{FTS_CONFIG}', %(expressions)s), "
        f"websearch_to_tsquery('{FTS_CONFIG}', %(query)s))"
    )

    def __init__(self, field: str, text: str) -> None:
        super().__init__(models.F(field))
        self.query = Value(text)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        query_sql, query_params = compiler.compile(self.query)
        sql, params = super().as_sql(compiler, connection, query=query_sql, **extra)
        return sql, [*params, *query_params]


# A quoted phrase, or a run of anything else that is not whitespace.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def terms(text: str) -> list[list[tuple[bool, str]]]:
    """`text` as OR-groups of AND-ed (negated, term) pairs, websearch style."""
    groups: list[list[tuple[bool, str]]] = [[]]
    for match in _TOKEN.finditer(text):
        negated, phrase, word = match.group(1) == "-", match.group(2), match.group(3)
        if word is not None:
            if word.lower() == "or" and groups[-1]:
                groups.append([])
                continue
            negated = word.startswith("-") and len(word) > 1
            phrase = word[1:] if negated else word
        phrase = phrase.strip()
        if phrase:
            groups[-1].append((negated, phrase))
    return [group for group in groups if group]


def _like(field: str, text: str) -> Q | None:
    groups = []
    for group in terms(text):
        parts = [
            ~Q(**{f"{field}__icontains": t}) if neg else Q(**{f"{field}__icontains": t}) for neg, t in group
        ]
        groups.append(reduce(and_, parts))
    return reduce(or_, groups) if groups else None


def matches(field: str, text: str) -> Q | None:
    """A Q for rows whose `field` matches the websearch query `text`; None if it is empty."""
    text = text.strip()
    if not text or not terms(text):
        return None
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__websearch": text})
    return _like(field, text)


def matches_any(fields: list[str], text: str) -> Q | None:
    """Rows where each term of `text` is in one of `fields` (LIKE, for short columns)."""
    groups = []
    for group in terms(text):
        parts = []
        for negated, term in group:
            anywhere = reduce(or_, [Q(**{f"{field}__icontains": term}) for field in fields])
            parts.append(~anywhere if negated else anywhere)
        groups.append(reduce(and_, parts))
    return reduce(or_, groups) if groups else None


def score(value: str, text: str) -> float:
    """A relevance score of `value` for `text` where the database has none to give.

    Occurrences of the wanted terms, dampened by length, like ts_rank; an exact
    match of the whole value counts most, then a value that starts with the query.
    """
    haystack = value.lower()
    query = text.strip().lower()
    if haystack == query:
        return 1.0
    wanted = [t.lower() for group in terms(text) for negated, t in group if not negated]
    hits = sum(haystack.count(t) for t in wanted)
    base = hits / (hits + 1 + len(haystack) / 200)
    return min(0.99, base + (0.3 if haystack.startswith(query) else 0.0))
