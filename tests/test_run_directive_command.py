"""`manage.py run_directive` and the admin's run and cancel actions."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from automations.models import Directive, DirectiveExecution

pytestmark = pytest.mark.django_db

SUMMARY = """name: summary
permissions: ["read:*"]
inputs:
  hours: {type: number, default: 24}
steps:
  - name: counts
    script: generate_summary
    inputs: {window_hours: "{{ inputs.hours }}"}
  - conditional:
      if: "{{ counts.threads.total >= 1 }}"  # its own thread counts
      then: {script: find_permission_escalations, inputs: {window_hours: "{{ inputs.hours }}"}}
"""


@pytest.fixture
def summary() -> Directive:
    return Directive.objects.upsert_from_yaml(SUMMARY)


def test_it_runs_a_directive_printing_each_step(summary: Directive) -> None:
    out = StringIO()
    call_command("run_directive", "summary", "--input", "hours=2", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "… steps[0] script counts"
    assert lines[1].startswith("✓ steps[0] script counts (")
    assert lines[2:4] == ["… steps[1] conditional", "… steps[1].conditional.then script"]
    assert lines[4].startswith("✓ steps[1].conditional.then script (")
    assert lines[5].startswith("✓ steps[1] conditional (")
    assert lines[6].startswith("execution ") and ": completed in " in lines[6]
    assert '"escalations":[]' in lines[7]
    assert DirectiveExecution.objects.get().inputs == {"hours": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no directive named 'nope'"),
        (["summary", "--input", "hours"], "--input 'hours': expected KEY=VALUE"),
        (["summary", "--input", "hours=soon"], "inputs.hours: expected a number, not 'soon'"),
        (["summary", "--input", "days=2"], "inputs.days: unknown input"),
    ],
)
def test_it_refuses_bad_arguments(summary: Directive, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("run_directive", *args, stdout=StringIO())


def test_a_failed_run_exits_non_zero_saying_why(capsys: pytest.CaptureFixture[str]) -> None:
    Directive.objects.upsert_from_yaml(
        "name: bad\npermissions: [read:threads]\nsteps:\n  - script: cleanup_old_logs\n"
    )
    with pytest.raises(SystemExit) as exited:
        _run_cli("bad")
    assert exited.value.code == 1
    assert "permission 'write:logs' denied" in capsys.readouterr().err


def _run_cli(name: str) -> None:
    from django.core.management import ManagementUtility

    ManagementUtility(["manage.py", "run_directive", name]).execute()


@pytest.fixture
def alice(client: Client) -> Client:
    User.objects.create_superuser("alice", "alice@example.com", "pw-alice-123")
    client.login(username="alice", password="pw-alice-123")
    return client


def test_the_admin_runs_a_directive_and_cancels_an_execution(alice: Client, summary: Directive) -> None:
    response = alice.post(
        "/admin/automations/directive/",
        {"action": "run_directive", "_selected_action": [summary.pk]},
        follow=True,
    )
    assert response.status_code == 200
    execution = DirectiveExecution.objects.get()
    assert f"Ran summary: execution {execution.pk} is completed" in response.content.decode()
    waiting = DirectiveExecution.objects.create(directive=summary, directive_name="summary")
    response = alice.post(
        "/admin/automations/directiveexecution/",
        {"action": "cancel_execution", "_selected_action": [execution.pk, waiting.pk]},
        follow=True,
    )
    assert "1 execution(s) asked to stop" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    assert alice.get(f"/admin/automations/directiveexecution/{execution.pk}/change/").status_code == 200
    assert alice.get("/admin/automations/automation/").status_code == 200
