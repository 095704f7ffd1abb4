"""The /graphql endpoint: POST JSON from API clients, GET for GraphiQL."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from strawberry.django.views import AsyncGraphQLView

from missioncontrol.authentication import api_access
from missioncontrol.graphql.context import Context
from missioncontrol.graphql.schema import schema


class GraphQLView(AsyncGraphQLView[Context, None]):
    # Async so that a DataLoader can batch the reads of sibling objects (a thread's logs).
    async def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        return Context(request=request, response=response)

    async def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        """GraphiQL from the pinned local copies (templates/graphql/graphiql.html), not a CDN.

        Rendered without the request's context processors: they read the session, which
        an async view may not do on the event loop."""
        return HttpResponse(render_to_string("graphql/graphiql.html", {"endpoint": request.path}))


# Read-only, and its clients are scripts and dashboards posting JSON, not forms: exempt
# from Django's CSRF middleware, with the check made for sessions by `api_access`.
graphql_view = csrf_exempt(api_access()(GraphQLView.as_view(schema=schema)))
