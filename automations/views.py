"""Directive, automation, execution and knowledge pages over the automations models.

Thin over the same domain code as /api/internal/: a run starts through `runs.start`
(the `execute` endpoint's), an automation is checked and saved by the API's
AutomationSerializer, executions are listed through its FilterSet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from automations import runs
from automations.api.serializers import AutomationSerializer
from automations.filtersets import DirectiveExecutionFilterSet
from automations.inputs import InputError, coerce
from automations.models import ALERT_TYPES, Automation, Directive, DirectiveExecution, KnowledgeEntry
from missioncontrol import roles
from missioncontrol.jsontext import JSONDecodeError, dumps, loads
from missioncontrol.pages import list_page, visible
from missioncontrol.pagination import Keyset

VIEW_AUTOMATIONS = "automations.view_automation"
ADD_AUTOMATION = "automations.add_automation"
CHANGE_AUTOMATION = "automations.change_automation"
DELETE_AUTOMATION = "automations.delete_automation"
# Blank key/value rows the builder offers for event filters (beyond the saved ones).
BLANK_FILTER_ROWS = 2
# Offered as the builder's event types (any other type may be typed in).
EVENT_TYPES = (
    "thread.started",
    "thread.ended",
    "thread.step",
    "log",
    "mcp.status",
    "permission.check",
    "directive.execution",
)


def _require(request: HttpRequest, permission: str) -> None:
    if not roles.can(request.user, permission):
        raise PermissionDenied(f"Your role does not allow this (needs {permission}).")


def _flat(errors: Any) -> dict[str, list[str]]:
    """{field: [reason]} from a serializer's or InputError's errors."""
    if isinstance(errors, dict):
        return {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
    return {"non_field_errors": [str(m) for m in errors]}


# ---------------------------------------------------------------- inputs forms


@dataclass
class InputField:
    """One declared input of a directive, as a form field."""

    name: str
    kind: str
    description: str
    required: bool
    has_default: bool
    default: Any
    enum: list[Any] | None
    value: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def widget(self) -> str:
        if self.enum:
            return "select"
        return {"integer": "number", "number": "number", "boolean": "boolean"}.get(
            self.kind, "json" if self.kind in ("array", "object") else "text"
        )

    @property
    def default_text(self) -> str:
        return _text(self.default) if self.has_default else ""

    @property
    def choices(self) -> list[str]:
        return [_text(v) for v in self.enum or []]


def _text(value: Any) -> str:
    """A value as a form shows it (and `_given` reads it back)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return dumps(value)


def input_fields(
    directive: Directive | None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[InputField]:
    """The directive's declared inputs as fields, filled with `values` and their `errors`."""
    spec = (directive.definition.get("inputs") or {}) if directive else {}
    values, errors = values or {}, errors or {}
    fields = []
    for name, declared in spec.items():
        has_default = "default" in declared
        fields.append(
            InputField(
                name=name,
                kind=declared.get("type", "string"),
                description=declared.get("description", ""),
                required=not has_default and declared.get("required", True),
                has_default=has_default,
                default=declared.get("default"),
                enum=declared.get("enum"),
                value=_text(values[name]) if name in values and values[name] is not None else "",
                errors=errors.get(f"inputs.{name}", []),
            )
        )
    return fields


def _given(directive: Directive, data: QueryDict) -> dict[str, Any]:
    """The inputs a form gave: its raw JSON if filled in, else each non-empty field.

    Field values stay text: `coerce` (what every run goes through) reads "30" as an
    integer, "true" as a boolean and '["a"]' as an array. JSONDecodeError for bad JSON.
    """
    raw = data.get("inputs_json", "").strip()
    if raw:
        value = loads(raw)
        if not isinstance(value, dict):
            raise JSONDecodeError("expected an object of input -> value", raw, 0)
        return value
    spec = directive.definition.get("inputs") or {}
    return {name: data[f"input:{name}"] for name in spec if data.get(f"input:{name}", "").strip() != ""}


def _coerced(directive: Directive, given: dict[str, Any]) -> dict[str, Any]:
    """`given` with each value of its declared type (defaults left to the run)."""
    values = coerce(directive.definition.get("inputs") or {}, given)
    return {name: values[name] for name in given}


# ---------------------------------------------------------------- directives


@login_required
def directive_list(request: HttpRequest) -> HttpResponse:
    # Counted over the entries the user may see: another team's count is its data too.
    counts = dict(
        visible(request, KnowledgeEntry.objects.filter(source_directive__isnull=False))
        .order_by()
        .values_list("source_directive")
        .annotate(n=Count("id"))
    )
    directives = list(Directive.objects.order_by("name"))
    for directive in directives:
        directive.knowledge_count = counts.get(directive.pk, 0)  # type: ignore[attr-defined]
    return render(request, "automations/directives.html", {"directives": directives})


def _directive_context(request: HttpRequest, directive: Directive) -> dict[str, Any]:
    return {
        "directive": directive,
        "steps": list(directive.steps()),
        "scripts": directive.script_names(),
        "tools": directive.tool_refs(),
        "knowledge": visible(request, directive.knowledge.order_by("title")),
        "can_run": roles.can(request.user, roles.RUN_DIRECTIVE),
        "fields": input_fields(directive),
        "executions": visible(request, DirectiveExecution.objects.filter(directive=directive))[:10],
    }


@login_required
def directive_page(request: HttpRequest, name: str) -> HttpResponse:
    directive = get_object_or_404(Directive, name=name)
    return render(request, "automations/directive.html", _directive_context(request, directive))


@login_required
@require_POST
def directive_run(request: HttpRequest, name: str) -> HttpResponse:
    """The Run form: start the directive with the inputs given, then show its execution."""
    _require(request, roles.RUN_DIRECTIVE)
    directive = get_object_or_404(Directive, name=name)
    given: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    status = 400
    try:
        given = _given(directive, request.POST)
        execution = runs.start(request.user, directive, given, request=request)
    except JSONDecodeError as exc:
        errors = {"inputs_json": [f"not a JSON object of inputs: {exc.msg}"]}
    except InputError as exc:
        errors = exc.errors
    except runs.Refused as exc:
        errors = {"non_field_errors": [str(exc)]}
        status = 429 if isinstance(exc, runs.Busy) else 400
    else:
        return redirect("execution-page", execution.pk)
    context = _directive_context(request, directive)
    shown = {f"inputs.{f.name}" for f in context["fields"]}
    context |= {
        "fields": input_fields(directive, given, errors),
        "run_errors": {k: v for k, v in errors.items() if k not in shown and k != "inputs_json"},
        "json_errors": errors.get("inputs_json", []),
        "inputs_json": request.POST.get("inputs_json", ""),
    }
    return render(request, "automations/directive.html", context, status=status)


# ---------------------------------------------------------------- automations


def _automations_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "can_add": roles.can(request.user, ADD_AUTOMATION),
        "can_change": roles.can(request.user, CHANGE_AUTOMATION),
        "can_delete": roles.can(request.user, DELETE_AUTOMATION),
        "can_run": roles.can(request.user, roles.RUN_DIRECTIVE),
    }


@login_required
def automation_list(request: HttpRequest) -> HttpResponse:
    _require(request, VIEW_AUTOMATIONS)
    rows = []
    for automation in Automation.objects.select_related("directive").order_by("name"):
        upcoming = automation.next_runs(1) if automation.enabled else []
        rows.append({"automation": automation, "next_run": upcoming[0] if upcoming else None})
    return render(request, "automations/automations.html", {"rows": rows, **_automations_context(request)})


def _filter_rows(filters: dict[str, Any]) -> list[tuple[str, str]]:
    # A string that would read back as another value (5, true, "x") is shown quoted.
    rows = [(k, v if isinstance(v, str) and _scalar(v) == v else dumps(v)) for k, v in filters.items()]
    return rows + [("", "")] * BLANK_FILTER_ROWS


def _scalar(text: str) -> Any:
    """A filter value: a JSON scalar when it reads as one (5, true, null, "x"), else the text."""
    try:
        value = loads(text)
    except JSONDecodeError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text


def _automation_data(post: QueryDict) -> dict[str, Any]:
    """What the builder posted, as the REST API's automation body."""
    trigger = post.get("trigger", "")
    keys, values = post.getlist("filter_key"), post.getlist("filter_value")
    filters = {k.strip(): _scalar(v.strip()) for k, v in zip(keys, values, strict=False) if k.strip()}
    event_type = {
        Automation.Trigger.EVENT: post.get("event_type", "").strip(),
        Automation.Trigger.ALERT: post.get("alert_type", "").strip(),
    }.get(trigger, "")
    return {
        "name": post.get("name", "").strip(),
        "directive": post.get("directive", ""),
        "trigger": trigger,
        "schedule": post.get("schedule", "").strip() if trigger == Automation.Trigger.SCHEDULE else "",
        "event_type": event_type,
        "filters": filters if trigger != Automation.Trigger.SCHEDULE else {},
        "enabled": post.get("enabled") == "on",
    }


def _builder(
    request: HttpRequest,
    automation: Automation | None,
    data: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    if data is None:
        data = {
            "name": automation.name if automation else "",
            "directive": automation.directive.name if automation else "",
            "trigger": automation.trigger if automation else Automation.Trigger.SCHEDULE,
            "schedule": automation.schedule if automation else "",
            "event_type": automation.event_type if automation else "",
            "filters": automation.filters if automation else {},
            "inputs": automation.inputs if automation else {},
            "enabled": automation.enabled if automation else True,
        }
    directive = Directive.objects.filter(name=data["directive"]).first()
    editable = roles.can(request.user, CHANGE_AUTOMATION if automation else ADD_AUTOMATION)
    fields = input_fields(directive, data.get("inputs") or {}, errors)
    shown = {f"inputs.{f.name}" for f in fields} | {
        "name",
        "directive",
        "trigger",
        "schedule",
        "event_type",
        "filters",
        "inputs",
        "inputs_json",
    }
    context = {
        "automation": automation,
        "data": data,
        "errors": errors,
        "other_errors": {k: v for k, v in errors.items() if k not in shown},
        "directives": Directive.objects.order_by("name"),
        "directive": directive,
        "fields": fields,
        "inputs_json": request.POST.get("inputs_json", "") if request.method == "POST" else "",
        "filter_rows": _filter_rows(data.get("filters") or {}),
        "triggers": Automation.Trigger.choices,
        "alert_types": ALERT_TYPES,
        "event_types": EVENT_TYPES,
        "editable": editable,
        "next_runs": _next_runs(data["schedule"]) if data["trigger"] == Automation.Trigger.SCHEDULE else None,
        "executions": (
            visible(request, DirectiveExecution.objects.filter(automation=automation))[:10]
            if automation
            else []
        ),
        **_automations_context(request),
    }
    return render(request, "automations/automation_form.html", context, status=status)


def _save(request: HttpRequest, automation: Automation | None) -> HttpResponse:
    directive = Directive.objects.filter(name=request.POST.get("directive", "")).first()
    data = _automation_data(request.POST)
    try:
        given = _given(directive, request.POST) if directive else {}
    except JSONDecodeError as exc:
        data["inputs"] = {}
        return _builder(request, automation, data, {"inputs_json": [f"not a JSON object: {exc.msg}"]}, 400)
    data["inputs"] = given
    serializer = AutomationSerializer(automation, data=data)
    if not serializer.is_valid():
        return _builder(request, automation, data, _flat(serializer.errors), 400)
    assert directive is not None  # the serializer found it
    # Stored typed (what the API would be given), the defaults left to each run.
    serializer.save(inputs=_coerced(directive, given))
    return redirect("automation-list-page")


@login_required
def automation_new(request: HttpRequest) -> HttpResponse:
    _require(request, ADD_AUTOMATION)
    if request.method == "POST":
        return _save(request, None)
    data = None
    if request.GET.get("directive"):
        data = {
            "name": "",
            "directive": request.GET["directive"],
            "trigger": Automation.Trigger.SCHEDULE,
            "schedule": "",
            "event_type": "",
            "filters": {},
            "inputs": {},
            "enabled": True,
        }
    return _builder(request, None, data)


@login_required
def automation_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The builder over a saved automation: editable by whoever may change automations."""
    _require(request, VIEW_AUTOMATIONS)
    automation = get_object_or_404(Automation.objects.select_related("directive"), pk=pk)
    if request.method == "POST":
        _require(request, CHANGE_AUTOMATION)
        return _save(request, automation)
    return _builder(request, automation)


@login_required
@require_POST
def automation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, DELETE_AUTOMATION)
    get_object_or_404(Automation, pk=pk).delete()
    return redirect("automation-list-page")


@login_required
@require_POST
def automation_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Run now: the automation's directive with its inputs, as the signed-in user."""
    _require(request, roles.RUN_DIRECTIVE)
    automation = get_object_or_404(Automation.objects.select_related("directive"), pk=pk)
    try:
        execution = runs.start(
            request.user, automation.directive, automation.inputs, automation=automation, request=request
        )
    except (InputError, runs.Refused) as exc:
        context = {"automation": automation, "reason": str(exc)}
        return render(request, "automations/run_refused.html", context, status=409)
    return redirect("execution-page", execution.pk)


def _next_runs(schedule: str) -> dict[str, Any]:
    candidate = Automation(trigger=Automation.Trigger.SCHEDULE, schedule=schedule.strip())
    problems = candidate.problems().get("schedule", []) if schedule.strip() else []
    return {
        "schedule": schedule,
        "times": candidate.next_runs(5) if not problems else [],
        "problems": problems,
    }


@login_required
@require_GET
def schedule_preview(request: HttpRequest) -> HttpResponse:
    """The next five times a cron expression fires (UTC), or why it is not one (htmx)."""
    _require(request, VIEW_AUTOMATIONS)
    return render(
        request, "automations/_next_runs.html", {"next_runs": _next_runs(request.GET.get("schedule", ""))}
    )


@login_required
@require_GET
def inputs_form(request: HttpRequest) -> HttpResponse:
    """The inputs fields of the directive picked in the builder (htmx)."""
    _require(request, VIEW_AUTOMATIONS)
    directive = Directive.objects.filter(name=request.GET.get("directive", "")).first()
    return render(
        request,
        "automations/_inputs.html",
        {"fields": input_fields(directive), "directive": directive, "editable": True},
    )


# ---------------------------------------------------------------- executions


@login_required
def execution_list(request: HttpRequest) -> HttpResponse:
    page = list_page(
        request,
        "executions",
        DirectiveExecutionFilterSet,
        DirectiveExecution.objects.select_related("automation", "started_by", "team"),
        Keyset("created_at", default_limit=50, max_limit=500),
    )
    context = {
        "page": page,
        "statuses": DirectiveExecution.Status.values,
        "triggers": DirectiveExecution.Trigger.values,
        "directive_names": Directive.objects.order_by("name").values_list("name", flat=True),
    }
    return render(request, "automations/executions.html", context)


def _execution(request: HttpRequest, pk: int) -> DirectiveExecution:
    execution = (
        visible(request, DirectiveExecution.objects.select_related("automation")).filter(pk=pk).first()
    )
    if execution is None:
        raise Http404(f"No execution {pk}")
    return execution


def _execution_context(request: HttpRequest, execution: DirectiveExecution) -> dict[str, Any]:
    steps = list(execution.step_runs.order_by("sequence"))
    for step in steps:
        step.output_text = dumps(step.output)  # type: ignore[attr-defined]
    return {"execution": execution, "steps": steps, "result_text": dumps(execution.result)}


@login_required
def execution_page(request: HttpRequest, pk: int) -> HttpResponse:
    """An execution and its step results; static/mc/execution.js keeps it live."""
    execution = _execution(request, pk)
    return render(request, "automations/execution.html", _execution_context(request, execution))


@login_required
@require_GET
def execution_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the execution page (status and steps), fetched as the run moves."""
    execution = _execution(request, pk)
    return render(request, "automations/_execution_live.html", _execution_context(request, execution))


@login_required
def knowledge_list(request: HttpRequest) -> HttpResponse:
    entries = visible(request, KnowledgeEntry.objects.select_related("source_directive", "team")).order_by(
        "category", "title"
    )
    category = request.GET.get("category", "")
    if category in KnowledgeEntry.Category.values:
        entries = entries.filter(category=category)
    context = {"entries": entries, "categories": KnowledgeEntry.Category.choices, "category": category}
    return render(request, "automations/knowledge_list.html", context)


@login_required
def knowledge_page(request: HttpRequest, slug: str) -> HttpResponse:
    entries = visible(request, KnowledgeEntry.objects.all())
    entry = get_object_or_404(entries.select_related("source_directive", "team"), slug=slug)
    everything = list(entries.only("slug", "title", "content"))
    pairs = KnowledgeEntry.links(everything)
    links = {target for source, target in pairs if source == entry.slug}
    backlinks = {source for source, target in pairs if target == entry.slug}
    by_slug = {e.slug: e for e in everything}
    context = {
        "entry": entry,
        "links": [by_slug[s] for s in sorted(links) if s in by_slug],
        "backlinks": [by_slug[s] for s in sorted(backlinks) if s in by_slug],
    }
    return render(request, "automations/knowledge.html", context)
