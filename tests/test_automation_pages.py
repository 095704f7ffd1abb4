"""The automations pages, server side: the builder (through the API's checks), the cron
preview, Run forms and Run now (through the API's `execute` path), the execution history
and page, API tokens under settings; who may do what."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AccessEvent
from automations.models import Automation, Directive, DirectiveExecution
from missioncontrol.models import APIToken
from tests.conftest import make_user, signed_in, team

pytestmark = pytest.mark.django_db

PULSE = """name: pulse
description: Count stalled threads and log it
inputs:
  timeout_seconds:
    type: integer
    description: A thread idle this long is stalled
  note:
    type: string
    default: hello
  level:
    type: string
    enum: [low, high]
    default: low
permissions: [read:threads, write:logs]
steps:
  - name: stalled
    script: find_stalled_threads
    inputs:
      timeout_seconds: "{{ inputs.timeout_seconds }}"
  - name: summary
    script: log_health_check
    inputs:
      checked: "{{ stalled.checked }}"
      stalled: "{{ stalled.count }}"
"""


@pytest.fixture
def pulse() -> Directive:
    return Directive.objects.upsert_from_yaml(PULSE)


def builder_post(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "every-quarter",
        "directive": "pulse",
        "trigger": "schedule",
        "schedule": "*/15 * * * *",
        "input:timeout_seconds": "120",
        "enabled": "on",
        "filter_key": ["", ""],
        "filter_value": ["", ""],
    }
    body.update(overrides)
    return body


def test_the_builder_creates_a_schedule_automation_with_typed_inputs(
    client: Client, pulse: Directive
) -> None:
    response = client.post("/automations/new", builder_post())
    assert response.status_code == 302 and response["Location"] == "/automations"
    automation = Automation.objects.get(name="every-quarter")
    assert automation.directive == pulse and automation.trigger == "schedule"
    assert automation.schedule == "*/15 * * * *" and automation.enabled
    assert automation.inputs == {"timeout_seconds": 120}  # stored typed; defaults left to each run
    listing = client.get("/automations").content.decode()
    assert "every-quarter" in listing and "*/15 * * * *" in listing and "cron" in listing


def test_a_bad_cron_expression_is_a_field_error_and_nothing_is_saved(
    client: Client, pulse: Directive
) -> None:
    response = client.post("/automations/new", builder_post(schedule="every hour"))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'data-error-for="schedule"' in page and "is not a cron expression" in page
    assert not Automation.objects.exists()
    assert 'value="every hour"' in page  # what was typed stays in the form


def test_a_missing_required_input_is_named_under_its_field(client: Client, pulse: Directive) -> None:
    response = client.post("/automations/new", builder_post(**{"input:timeout_seconds": ""}))
    assert response.status_code == 400
    assert 'data-error-for="inputs.timeout_seconds">required<' in response.content.decode()
    wrong = client.post("/automations/new", builder_post(**{"input:timeout_seconds": "soon"}))
    assert 'data-error-for="inputs.timeout_seconds">expected an integer' in wrong.content.decode()
    assert not Automation.objects.exists()


def test_an_event_automation_keeps_its_filters_and_an_alert_its_type(
    client: Client, pulse: Directive
) -> None:
    event = builder_post(
        name="on-error",
        trigger="event",
        event_type="thread.ended",
        schedule="ignored",
        filter_key=["status", "retries", ""],
        filter_value=["error", "5", ""],
    )
    assert client.post("/automations/new", event).status_code == 302
    on_error = Automation.objects.get(name="on-error")
    assert (on_error.trigger, on_error.event_type, on_error.schedule) == ("event", "thread.ended", "")
    assert on_error.filters == {"status": "error", "retries": 5}
    alert = builder_post(name="on-anomaly", trigger="alert", alert_type="anomaly.detected")
    assert client.post("/automations/new", alert).status_code == 302
    assert Automation.objects.get(name="on-anomaly").event_type == "anomaly.detected"
    missing = client.post("/automations/new", builder_post(name="no-type", trigger="event", event_type=""))
    assert 'data-error-for="event_type"' in missing.content.decode()


def test_the_raw_json_inputs_replace_the_fields(client: Client, pulse: Directive) -> None:
    body = builder_post(inputs_json='{"timeout_seconds": 30, "level": "high"}')
    assert client.post("/automations/new", body).status_code == 302
    assert Automation.objects.get().inputs == {"timeout_seconds": 30, "level": "high"}
    bad = client.post("/automations/new", builder_post(name="x", inputs_json="{nope"))
    assert bad.status_code == 400 and 'data-error-for="inputs_json"' in bad.content.decode()


def test_an_automation_is_edited_and_deleted_by_an_admin(client: Client, pulse: Directive) -> None:
    automation = Automation.objects.create(
        name="quarterly", directive=pulse, trigger="event", event_type="log", filters={"level": "ERROR"}
    )
    page = client.get(f"/automations/{automation.pk}").content.decode()
    assert 'value="level"' in page and 'value="ERROR"' in page and "Save changes" in page
    changed = builder_post(name="quarterly", trigger="schedule", schedule="0 * * * *", enabled="")
    assert client.post(f"/automations/{automation.pk}", changed).status_code == 302
    automation.refresh_from_db()
    assert (automation.trigger, automation.schedule, automation.filters, automation.enabled) == (
        "schedule",
        "0 * * * *",
        {},
        False,
    )
    assert client.post(f"/automations/{automation.pk}/delete").status_code == 302
    assert not Automation.objects.exists()


def test_viewers_read_automations_but_may_not_change_delete_or_run_them(pulse: Directive) -> None:
    automation = Automation.objects.create(
        name="hourly",
        directive=pulse,
        trigger="schedule",
        schedule="0 * * * *",
        inputs={"timeout_seconds": 60},
    )
    viewer = signed_in(make_user("vera", "viewer"))
    listing = viewer.get("/automations").content.decode()
    assert "hourly" in listing and "Run now" not in listing and "New automation" not in listing
    page = viewer.get(f"/automations/{automation.pk}").content.decode()
    assert "Read-only" in page and '<fieldset class="plain" disabled>' in page
    assert viewer.get("/automations/new").status_code == 403
    assert viewer.post("/automations/new", builder_post()).status_code == 403
    assert viewer.post(f"/automations/{automation.pk}", builder_post(name="hourly")).status_code == 403
    assert viewer.post(f"/automations/{automation.pk}/delete").status_code == 403
    assert viewer.post(f"/automations/{automation.pk}/run").status_code == 403
    assert viewer.post("/directives/pulse/run", {"input:timeout_seconds": "5"}).status_code == 403
    assert Automation.objects.filter(name="hourly").exists() and not DirectiveExecution.objects.exists()
    # An operator runs directives but changes no automation (an admin's).
    operator = signed_in(make_user("otto", "operator"))
    assert operator.post(f"/automations/{automation.pk}/delete").status_code == 403
    assert operator.post(f"/automations/{automation.pk}/run").status_code == 302


def test_signed_out_visitors_are_sent_to_the_login_page(anonymous_client: Client, pulse: Directive) -> None:
    paths = [
        "/automations",
        "/automations/new",
        "/automations/preview?schedule=*+*+*+*+*",
        "/automations/inputs?directive=pulse",
        "/executions",
        "/executions/1",
        "/executions/1/live",
        "/settings/tokens",
    ]
    for path in paths:
        response = anonymous_client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path
    for path in ["/directives/pulse/run", "/automations/1/run", "/settings/tokens/1/revoke"]:
        assert anonymous_client.post(path).status_code == 302, path
    assert not DirectiveExecution.objects.exists()


def test_the_cron_preview_lists_the_next_five_runs_or_says_what_is_wrong(client: Client) -> None:
    good = client.get("/automations/preview", {"schedule": "30 2 * * 1"}).content.decode()
    assert good.count("<li") == 5 and good.count(" 02:30") == 5 and "Mon" in good
    bad = unescape(client.get("/automations/preview", {"schedule": "61 * * * *"}).content.decode())
    assert 'data-error-for="schedule"' in bad and "'61 * * * *' is not a cron expression" in bad
    assert "<li" not in bad
    assert "Type a cron expression" in client.get("/automations/preview", {"schedule": ""}).content.decode()


def test_the_builder_shows_the_picked_directives_inputs(client: Client, pulse: Directive) -> None:
    fields = client.get("/automations/inputs", {"directive": "pulse"}).content.decode()
    assert 'name="input:timeout_seconds"' in fields and 'type="number"' in fields
    assert 'name="input:level"' in fields and "<option>high</option>" in fields
    assert 'placeholder="hello"' in fields  # a default is the placeholder
    assert "Pick a directive" in client.get("/automations/inputs", {"directive": ""}).content.decode()


def test_the_run_form_starts_a_run_and_shows_its_execution(pulse: Directive) -> None:
    operator = signed_in(make_user("olive", "operator"))
    page = operator.get("/directives/pulse").content.decode()
    assert 'id="run-form"' in page and 'name="input:timeout_seconds"' in page
    response = operator.post("/directives/pulse/run", {"input:timeout_seconds": "90", "input:level": "high"})
    execution = DirectiveExecution.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/executions/{execution.pk}"
    assert execution.inputs == {"timeout_seconds": 90, "note": "hello", "level": "high"}
    assert execution.trigger_info == {"user": "olive"} and execution.status == "completed"
    assert AccessEvent.objects.filter(action="directive.run", actor_name="olive").exists()
    shown = operator.get(response["Location"]).content.decode()
    assert "completed" in shown and "stalled" in shown and "summary" in shown
    assert 'data-sequence="2"' in shown


def test_the_run_form_names_a_bad_input_under_its_field(pulse: Directive) -> None:
    operator = signed_in(make_user("olive", "operator"))
    missing = operator.post("/directives/pulse/run", {"input:level": "high"})
    assert missing.status_code == 400
    assert 'data-error-for="inputs.timeout_seconds">required<' in missing.content.decode()
    wrong = operator.post("/directives/pulse/run", {"input:timeout_seconds": "5", "input:level": "medium"})
    assert "expected one of" in wrong.content.decode()
    json_wrong = operator.post(
        "/directives/pulse/run", {"inputs_json": '{"timeout_seconds": 5, "colour": 1}'}
    )
    assert "unknown input" in json_wrong.content.decode()
    assert not DirectiveExecution.objects.exists()
    viewer_page = signed_in(make_user("vic", "viewer")).get("/directives/pulse").content.decode()
    assert 'id="run-form"' not in viewer_page and "not run it" in viewer_page


def test_run_now_runs_the_automations_inputs_as_the_user(pulse: Directive) -> None:
    automation = Automation.objects.create(
        name="hourly",
        directive=pulse,
        trigger="schedule",
        schedule="0 * * * *",
        inputs={"timeout_seconds": 60},
    )
    operator = signed_in(make_user("olive", "operator"))
    response = operator.post(f"/automations/{automation.pk}/run")
    execution = DirectiveExecution.objects.get()
    assert response["Location"] == f"/executions/{execution.pk}"
    assert execution.automation == automation and execution.triggered_by == "manual"
    assert execution.trigger_info == {"user": "olive", "automation": "hourly"}
    assert execution.inputs["timeout_seconds"] == 60
    listing = operator.get(f"/executions?automation={automation.pk}").content.decode()
    assert f'data-execution="{execution.pk}"' in listing and "hourly" in listing


def _run(directive: Directive, status: str) -> DirectiveExecution:
    return DirectiveExecution.objects.create(
        directive=directive, directive_name=directive.name, status=status
    )


def test_the_execution_history_filters_by_directive_and_status(client: Client, pulse: Directive) -> None:
    other = Directive.objects.upsert_from_yaml(PULSE.replace("name: pulse", "name: other"))
    failed, done, elsewhere = _run(pulse, "failed"), _run(pulse, "completed"), _run(other, "failed")
    rows = client.get("/executions", {"directive": "pulse", "status": "failed"}).content.decode()
    assert f'data-execution="{failed.pk}"' in rows
    assert f'data-execution="{done.pk}"' not in rows and f'data-execution="{elsewhere.pk}"' not in rows
    wrong = client.get("/executions", {"status": "exploded"}).content.decode()
    assert 'class="alert"' in wrong and "exploded" in wrong


def test_a_user_without_a_role_sees_no_execution(pulse: Directive) -> None:
    execution = _run(pulse, "completed")
    execution.team = team("alpha")  # a run of vic's team (a system run is for admins)
    execution.save()
    nemo, vic = make_user("nemo", None, "alpha"), make_user("vic", "viewer", "alpha")
    nobody = signed_in(nemo)
    pages = ("/executions", f"/executions/{execution.pk}", f"/executions/{execution.pk}/live", "/automations")
    for path in pages:
        assert nobody.get(path).status_code == 403, path
    assert not DirectiveExecution.objects.visible_to(nemo).exists()
    assert signed_in(vic).get(f"/executions/{execution.pk}").status_code == 200
    assert list(DirectiveExecution.objects.visible_to(vic)) == [execution]


def test_the_execution_page_lists_step_results_and_its_live_part(pulse: Directive) -> None:
    operator = signed_in(make_user("olive", "operator"))
    operator.post("/directives/pulse/run", {"input:timeout_seconds": "90"})
    execution = DirectiveExecution.objects.get()
    page = operator.get(f"/executions/{execution.pk}").content.decode()
    assert f'data-live-url="/executions/{execution.pk}/live"' in page and "mc/execution.js" in page
    live = operator.get(f"/executions/{execution.pk}/live").content.decode()
    assert live.startswith('<div id="execution-live" data-status="completed" data-final="true"')
    assert 'data-sequence="1" data-status="completed"' in live and 'data-sequence="2"' in live
    assert "<b>stalled</b>" in live and "<b>summary</b>" in live
    assert "&quot;count&quot;: 0" in live or "&quot;count&quot;:0" in live  # the step's output


def test_an_admin_issues_a_token_shown_once_and_revokes_it(client: Client, superuser: User) -> None:
    issued = client.post("/settings/tokens", {"name": "ci"})
    assert issued.status_code == 200 and issued["Cache-Control"] == "no-store"
    token = APIToken.objects.get(name="ci", owner=superuser)
    page = issued.content.decode()
    secret = page.split('id="token-secret" class="mono secret" readonly value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("mct_") and APIToken.objects.authenticate(secret) == token
    again = client.get("/settings/tokens").content.decode()
    assert secret not in again and token.prefix in again and "active" in again
    assert AccessEvent.objects.filter(action="token.issued", target=f"api_token:{token.pk}").exists()
    assert client.post(f"/settings/tokens/{token.pk}/revoke").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and APIToken.objects.authenticate(secret) is None
    assert AccessEvent.objects.filter(action="token.revoked", target=f"api_token:{token.pk}").exists()
    blank = client.post("/settings/tokens", {"name": ""})
    assert blank.status_code == 400 and 'data-error-for="name"' in blank.content.decode()


def test_a_user_lists_and_revokes_only_their_own_tokens(superuser: User) -> None:
    viewer_user = make_user("vic", "viewer")
    mine, _ = APIToken.objects.issue("vic-laptop", viewer_user)
    theirs, _ = APIToken.objects.issue("ops-ci", superuser)
    viewer = signed_in(viewer_user)
    page = viewer.get("/settings/tokens").content.decode()
    assert "vic-laptop" in page and "ops-ci" not in page and 'id="token-form"' not in page
    assert viewer.post("/settings/tokens", {"name": "sneaky"}).status_code == 403
    assert viewer.post(f"/settings/tokens/{theirs.pk}/revoke").status_code == 404
    assert viewer.post(f"/settings/tokens/{mine.pk}/revoke").status_code == 302
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None
    assert not APIToken.objects.filter(name="sneaky").exists()
    assert "/settings/tokens" in viewer.get("/settings").content.decode()


def test_the_navigation_leads_to_automations_and_executions(client: Client) -> None:
    page = client.get("/executions").content.decode()
    assert '<a href="/automations">Automations</a>' in page
    assert '<a href="/executions" aria-current="page">Executions</a>' in page
