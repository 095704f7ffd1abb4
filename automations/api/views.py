"""REST under /api/internal/: directives, scripts, execute, executions, automations, knowledge.

Thin over the models and automations.engine: a run started here goes through
`engine.submit` like every other.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automations import engine, runs, scripts
from automations.api.serializers import (
    AutomationSerializer,
    DirectiveDetailSerializer,
    DirectiveSerializer,
    DirectiveUpdateSerializer,
    DirectiveWriteSerializer,
    ExecuteSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    KnowledgeEntrySerializer,
    ScriptSerializer,
)
from automations.filtersets import DirectiveExecutionFilterSet, KnowledgeEntryFilterSet
from automations.models import Automation, Directive, DirectiveExecution, KnowledgeEntry
from missioncontrol import roles
from missioncontrol.listing import FilteredList
from missioncontrol.openapi import FIELD_ERRORS, NOT_FOUND, ref
from missioncontrol.pagination import Keyset

READ_ONLY = OpenApiResponse(ref("Detail"), description="A system directive is read-only.")
BUSY = OpenApiResponse(ref("Detail"), description="The directive already runs as often at once as allowed.")
FINISHED = OpenApiResponse(ref("Detail"), description="The execution has already finished.")


def _detail(directive: Directive) -> dict[str, Any]:
    return {**directive.summary(), "source": directive.source}


def _saved(text: str, current: Directive | None) -> dict[str, Any]:
    try:
        return Directive.objects.checked(text, current)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict) from None


class DirectiveList(APIView):
    @extend_schema(responses={200: DirectiveSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response([d.summary() for d in Directive.objects.all()])

    @extend_schema(
        request=DirectiveWriteSerializer, responses={201: DirectiveDetailSerializer, 400: FIELD_ERRORS}
    )
    def post(self, request: Request) -> Response:
        body = DirectiveWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        parsed = _saved(body.validated_data["source"], None)
        directive = Directive(enabled=body.validated_data.get("enabled", True))
        directive.apply(body.validated_data["source"], parsed)
        directive.save()
        return Response(_detail(directive), status=status.HTTP_201_CREATED)


class DirectiveDetail(APIView):
    def _get(self, name: str, *, writing: bool = False) -> Directive:
        directive = get_object_or_404(Directive, name=name)
        if writing and directive.system:
            raise PermissionDenied(f"{name!r} is a system directive: read-only")
        return directive

    @extend_schema(responses={200: DirectiveDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, name: str) -> Response:
        return Response(_detail(self._get(name)))

    @extend_schema(
        request=DirectiveUpdateSerializer,
        responses={200: DirectiveDetailSerializer, 400: FIELD_ERRORS, 403: READ_ONLY, 404: NOT_FOUND},
    )
    def put(self, request: Request, name: str) -> Response:
        directive = self._get(name, writing=True)
        body = DirectiveUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "source" in body.validated_data:
            directive.apply(body.validated_data["source"], _saved(body.validated_data["source"], directive))
        if "enabled" in body.validated_data:
            directive.enabled = body.validated_data["enabled"]
        directive.save()
        return Response(_detail(directive))

    @extend_schema(
        request=DirectiveUpdateSerializer,
        responses={200: DirectiveDetailSerializer, 400: FIELD_ERRORS, 403: READ_ONLY, 404: NOT_FOUND},
    )
    def patch(self, request: Request, name: str) -> Response:
        return self.put(request, name)

    @extend_schema(responses={204: None, 403: READ_ONLY, 404: NOT_FOUND})
    def delete(self, request: Request, name: str) -> Response:
        self._get(name, writing=True).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScriptList(APIView):
    @extend_schema(responses={200: ScriptSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "name": s.name,
                    "description": s.description,
                    "permissions": list(s.permissions),
                    "parameters": s.parameters(),
                }
                for s in scripts.registry().values()
            ]
        )


class Execute(APIView):
    write_permission = roles.RUN_DIRECTIVE  # an operator's

    @extend_schema(
        request=ExecuteSerializer,
        responses={202: ExecutionSerializer, 400: FIELD_ERRORS, 429: BUSY},
    )
    def post(self, request: Request) -> Response:
        body = ExecuteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        directive: Directive = body.validated_data["directive"]
        try:
            execution = runs.start(
                request.user, directive, body.validated_data["inputs"], request=request._request
            )
        except runs.Busy as exc:
            return Response(
                {"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": "10"}
            )
        except runs.Refused as exc:
            raise ValidationError({"directive": [str(exc)]}) from None
        return Response(execution.summary(), status=status.HTTP_202_ACCEPTED)


class ExecutionList(FilteredList):
    """Directive executions, newest first."""

    filterset_class = DirectiveExecutionFilterSet
    keyset = Keyset("created_at", default_limit=50, max_limit=500)
    row_serializer = ExecutionSerializer

    def get_queryset(self) -> QuerySet[DirectiveExecution]:
        return DirectiveExecution.objects.select_related("started_by", "team")

    def row(self, obj: DirectiveExecution) -> dict[str, Any]:  # type: ignore[override]
        return obj.summary()


def _execution(request: Request, pk: int) -> DirectiveExecution:
    """The execution `pk` if the user may see it (automations.scope); 404 otherwise."""
    runs = DirectiveExecution.objects.visible_to(request.user).select_related("started_by", "team")
    return get_object_or_404(runs, pk=pk)


class ExecutionDetail(APIView):
    @extend_schema(responses={200: ExecutionDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        execution = _execution(request, pk)
        return Response({**execution.summary(), "steps": [s.as_dict() for s in execution.step_runs.all()]})


class ExecutionCancel(APIView):
    write_permission = roles.RUN_DIRECTIVE

    @extend_schema(request=None, responses={202: ExecutionSerializer, 404: NOT_FOUND, 409: FINISHED})
    def post(self, request: Request, pk: int) -> Response:
        execution = _execution(request, pk)
        if not engine.cancel(execution):
            return Response(
                {"detail": f"execution {pk} has already finished ({execution.status})"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(execution.summary(), status=status.HTTP_202_ACCEPTED)


_AUTOMATION = {200: AutomationSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND}


@extend_schema_view(
    create=extend_schema(responses={201: AutomationSerializer, 400: FIELD_ERRORS}),
    retrieve=extend_schema(responses={200: AutomationSerializer, 404: NOT_FOUND}),
    update=extend_schema(responses=_AUTOMATION),
    partial_update=extend_schema(responses=_AUTOMATION),
    destroy=extend_schema(responses={204: None, 404: NOT_FOUND}),
)
class AutomationViewSet(viewsets.ModelViewSet[Automation]):
    serializer_class = AutomationSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Automation]:
        return Automation.objects.select_related("directive")


class KnowledgeList(FilteredList):
    """What the analysis directives learned, most recently updated first; `q` searches."""

    filterset_class = KnowledgeEntryFilterSet
    keyset = Keyset("updated_at", default_limit=50, max_limit=500)
    row_serializer = KnowledgeEntrySerializer

    def get_queryset(self) -> QuerySet[KnowledgeEntry]:
        return KnowledgeEntry.objects.select_related("source_directive", "team")

    def row(self, obj: KnowledgeEntry) -> dict[str, Any]:  # type: ignore[override]
        return obj.summary()


class KnowledgeDetail(APIView):
    @extend_schema(responses={200: KnowledgeEntrySerializer, 404: NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        entries = KnowledgeEntry.objects.visible_to(request.user).select_related("source_directive", "team")
        return Response(get_object_or_404(entries, slug=slug).summary())
