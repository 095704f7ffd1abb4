"""The directive engine: templating, foreach, conditional, inputs, permission bounds,
the sandbox, and each run recorded as an execution, a thread and permission checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import PermissionEvent
from automations import bounds, engine, scripts
from automations.inputs import InputError
from automations.models import Directive, DirectiveExecution
from automations.scope import SYSTEM
from automations.scripts import script
from mcps.models import AGGREGATE_ID
from threads.models import Thread

pytestmark = pytest.mark.django_db


def echo(**params: Any) -> dict[str, Any]:
    return dict(params)


def items(count: int = 3) -> dict[str, Any]:
    return {"items": [{"id": f"T-{i}", "slow": i % 2 == 1} for i in range(count)], "total": count}


def write(value: Any = None) -> dict[str, Any]:
    return {"written": value}


def forever() -> dict[str, Any]:
    while True:
        time.sleep(0.01)


def fail() -> dict[str, Any]:
    raise RuntimeError("the disk is full")


@pytest.fixture(autouse=True)
def _test_scripts() -> Iterator[None]:
    """Scripts for these tests, registered for each test and gone after it."""
    saved = dict(scripts._registry)
    script("test_echo", "Answers its keyword arguments.", permissions=["read:test"])(echo)
    script("test_items", "A list of items.", permissions=["read:test"])(items)
    script("test_write", "Pretends to write.", permissions=["write:test"])(write)
    script("test_forever", "Never ends.", permissions=["read:test"])(forever)
    script("test_fail", "Always fails.", permissions=["read:test"])(fail)
    yield
    scripts._registry.clear()
    scripts._registry.update(saved)


def directive(text: str) -> Directive:
    return Directive.objects.upsert_from_yaml(text)


def run(text: str, **inputs: Any) -> DirectiveExecution:
    return engine.submit(directive(text), inputs, acting_for=SYSTEM, wait=True)


def outputs(execution: DirectiveExecution) -> list[tuple[str, str, Any]]:
    return [(s.path, s.status, s.output) for s in execution.step_runs.all()]


FLOW = """
name: flow
inputs:
  count: {type: integer, default: 3}
  label: {type: string}
permissions: [read:*, write:test]
steps:
  - name: fetch
    script: test_items
    inputs: {count: "{{ inputs.count }}"}
  - name: each
    foreach: items
    steps:
      - script: test_echo
        inputs: {id: "{{ item.id }}", position: "{{ index }}", tag: "{{ inputs.label }}-{{ item.id }}"}
      - conditional:
          if: "{{ item.slow }}"
          then:
            script: test_write
            inputs: {value: "{{ result.id }}"}
          else: []
  - script: test_echo
    inputs: {total: "{{ steps.fetch.total }}", seen: "{{ each | length }}", last: "{{ result[-1] }}"}
"""


def test_it_runs_foreach_conditional_and_templating_over_named_outputs() -> None:
    execution = run(FLOW, count="3", label="L")
    assert execution.status == "completed", execution.error
    assert execution.inputs == {"count": 3, "label": "L"}
    assert execution.result == {"total": 3, "seen": 3, "last": {"id": "T-2", "position": 2, "tag": "L-T-2"}}
    steps = outputs(execution)
    assert [p for p, _, _ in steps] == [
        "steps[0]",
        "steps[1]",
        "steps[1]#0.steps[0]",
        "steps[1]#0.steps[1]",
        "steps[1]#1.steps[0]",
        "steps[1]#1.steps[1]",
        "steps[1]#1.steps[1].conditional.then",
        "steps[1]#2.steps[0]",
        "steps[1]#2.steps[1]",
        "steps[2]",
    ]
    assert steps[2][2] == {"id": "T-0", "position": 0, "tag": "L-T-0"}
    assert steps[6][2] == {"written": "T-1"}
    assert all(status == "completed" for _, status, _ in steps)


def test_each_run_is_a_thread_with_its_steps_and_permission_checks() -> None:
    execution = run(FLOW, label="x", count=1)
    thread = Thread.objects.get(id=execution.thread_id)
    assert (thread.mcp_id, thread.status) == (AGGREGATE_ID, "complete")
    assert thread.execution_context["directive"] == "flow"
    assert thread.execution_context["execution_id"] == execution.pk
    steps = list(thread.steps.values_list("sequence", "step_type", "status"))
    assert steps == [
        (1, "script", "complete"),
        (2, "directive", "complete"),
        (3, "script", "complete"),
        (4, "directive", "complete"),
        (5, "script", "complete"),
    ]
    checks = PermissionEvent.objects.filter(thread=thread)
    assert sorted(checks.values_list("action", "resource", "granted")) == [("read", "test", True)]
    assert checks.get().user_id == "directive:flow"


def test_inputs_are_typed_defaulted_and_refused_with_their_names() -> None:
    d = directive(FLOW)
    with pytest.raises(InputError) as refused:
        engine.submit(d, {"count": "many", "colour": "red"}, acting_for=SYSTEM)
    assert refused.value.errors == {
        "inputs.colour": ["unknown input (this directive takes: count, label)"],
        "inputs.count": ["expected an integer, not 'many'"],
        "inputs.label": ["required"],
    }
    assert not DirectiveExecution.objects.exists()


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ inputs.__class__ }}",
        "{{ range(100000000) | list }}",
        "{{ 'x' * 100000000 }}",
        "{{ result|attr('__class__') }}",
    ],
)
def test_sandbox_escapes_are_refused_and_fail_the_step(expression: str) -> None:
    text = 'name: escape\npermissions: ["read:*"]\nsteps:\n  - script: test_echo\n'
    text += f'    inputs: {{v: "{expression}"}}\n'
    execution = run(text)
    assert execution.status == "failed"
    assert "not allowed" in execution.error or "undefined" in execution.error
    assert execution.step_runs.get().status == "failed"


def test_a_steps_permissions_must_be_declared_when_saved() -> None:
    parsed = directive(
        "name: greedy\npermissions: [read:test, execute:time/*]\nsteps:\n"
        "  - script: test_write\n  - tool: time__get_current_time\n  - tool: git__git_log\n  - script: nope\n"
    ).definition
    assert bounds.problems(parsed) == {
        "steps[0]": [
            "script 'test_write' needs 'write:test', which the directive's permissions do not include"
        ],
        "steps[2]": [
            "tool call needs 'execute:git/git_log', which the directive's permissions do not include"
        ],
        "steps[3]": ["no script named 'nope' (see GET /api/internal/scripts)"],
    }


def test_a_denied_permission_at_run_time_is_recorded_and_fails_the_step() -> None:
    execution = run(
        "name: sneaky\npermissions: [read:test]\nsteps:\n  - script: test_echo\n  - script: test_write\n"
    )
    assert execution.status == "failed"
    assert "steps[1]: permission 'write:test' denied" in execution.error
    denied = PermissionEvent.objects.get(thread_id=execution.thread_id, granted=False)
    assert (denied.action, denied.resource, denied.severity) == ("write", "test", "warn")
    assert [s.status for s in execution.step_runs.all()] == ["completed", "failed"]
    assert Thread.objects.get(id=execution.thread_id).status == "error"


def test_a_failing_step_fails_the_run_unless_it_may() -> None:
    failed = run("name: f\npermissions: [read:test]\nsteps:\n  - script: test_fail\n  - script: test_echo\n")
    assert failed.status == "failed" and failed.error == "steps[0]: the disk is full"
    assert failed.step_runs.count() == 1
    tolerant = run(
        "name: g\npermissions: [read:test]\nsteps:\n  - script: test_fail\n    continue_on_error: true\n"
        "  - script: test_echo\n    inputs: {was: '{{ result.error }}'}\n"
    )
    assert tolerant.status == "completed" and tolerant.result == {"was": "the disk is full"}


PROMISE = """
name: promise
permissions: [read:test]
output: OUTPUT
steps:
  - script: test_echo
    inputs: {total: 3, label: "three"}
"""


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ("[total, label]", ""),
        ("{total: integer, label: string}", ""),
        ("[total, missing]", "output.missing: missing from the run's result (it has label, total)"),
        ("{total: string}", "output.total: expected a string, not 3"),
    ],
)
def test_a_run_whose_result_breaks_its_directives_output_fails_naming_the_field(
    output: str, error: str
) -> None:
    execution = run(PROMISE.replace("OUTPUT", output))
    assert (execution.status, execution.error) == (("failed", error) if error else ("completed", ""))


def test_an_output_that_is_neither_keys_nor_typed_keys_is_refused_when_saved() -> None:
    with pytest.raises(ValueError, match="output"):
        directive(PROMISE.replace("OUTPUT", "{total: decimal}"))
