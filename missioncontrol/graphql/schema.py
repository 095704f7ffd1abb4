"""The one GraphQL schema: every app's Query, the query optimizer, and limits on cost.

Depth and alias limits refuse a query before it runs: a nested or aliased query can
otherwise ask for the same large lists many times over.
"""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry_django.optimizer import DjangoOptimizerExtension

from audit.graphql.schema import AuditQuery
from automations.graphql.schema import AutomationsQuery
from logs.graphql.schema import LogsQuery
from mcps.graphql.schema import MCPsQuery
from missioncontrol.graphql.scalars import SCALARS
from threads.graphql.schema import ThreadsQuery
from usage.graphql.schema import UsageQuery

MAX_DEPTH = 10
MAX_ALIASES = 20


@strawberry.type
class Query(ThreadsQuery, LogsQuery, AuditQuery, MCPsQuery, AutomationsQuery, UsageQuery):
    """Everything Mission Control observes, read-only."""


schema = strawberry.Schema(
    query=Query,
    config=StrawberryConfig(scalar_map=SCALARS),
    extensions=[
        DjangoOptimizerExtension,
        partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
        partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
    ],
)
