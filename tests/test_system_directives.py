"""The seed's system directives: valid YAML over registered scripts, loaded idempotently."""

from __future__ import annotations

import inspect
import re
import shutil
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.core.management.sql import emit_post_migrate_signal
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from automations import scripts
from automations.definition import script_name
from automations.models import Directive
from automations.system import DIRECTIVES_DIR, load_system_directives, system_files

pytestmark = pytest.mark.django_db

SEED = {
    "monitor_thread_health",
    "detect_anomalies",
    "optimize_log_retention",
    "cleanup_stale_sessions",
    "heal_mcp_connection",
    "generate_performance_report",
    "analyze_permission_patterns",
    "analyze_patterns",
}
FILES = system_files()


def _steps(steps: list[Any], named: list[str]) -> Iterator[tuple[dict[str, Any], list[str], bool]]:
    """(step, names of the steps before it, inside a foreach) depth first, in order of execution."""
    for step in steps:
        yield step, list(named), False
        nested = list(step.get("steps") or [])
        conditional = step.get("conditional") or {}
        for branch in ("then", "else"):
            value = conditional.get(branch)
            nested += value if isinstance(value, list) else [value] if value else []
        for child, before, in_loop in _steps(nested, named):
            yield child, before, in_loop or "foreach" in step
        if step.get("name"):
            named.append(step["name"])


def _templates(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _templates(v)


def test_every_seed_directive_has_its_file_and_loads_as_a_system_directive() -> None:
    assert {p.stem for p in FILES} == SEED
    for path in FILES:
        directive = Directive.objects.upsert_from_yaml(path.read_text(), system=True)
        assert (directive.name, directive.system, directive.version) == (path.stem, True, "1.0.0")
        assert directive.description


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_step_names_a_registered_script_with_parameters_it_takes(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    declared = set(data["permissions"])
    for step, _before, _in_loop in _steps(data["steps"], []):
        name = script_name(step)
        if name is None:
            continue
        script = scripts.get(name)
        assert script is not None, f"{path.name}: no script {name!r}"
        params = inspect.signature(script.func).parameters
        assert set(step.get("inputs") or {}) <= set(params), f"{path.name}: {name} takes {list(params)}"
        # The directive's permissions bound its steps': each script's must be declared.
        assert set(script.permissions) <= declared, f"{path.name}: {name} needs {script.permissions}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_templates_compile_in_the_sandbox_and_name_only_what_exists_before_them(path: Path) -> None:
    env = SandboxedEnvironment()
    data = yaml.safe_load(path.read_text())
    inputs = set(data.get("inputs") or {})
    for step, before, in_loop in _steps(data["steps"], []):
        texts = list(_templates(step.get("inputs") or {}))
        conditional = step.get("conditional")
        if conditional:
            texts.append(conditional["if"])
        if "foreach" in step:
            texts.append("{{ " + step["foreach"] + " }}")  # a bare expression, as in the seed
        for text in texts:
            names = meta.find_undeclared_variables(env.parse(text))
            allowed = {"inputs", "result", *before} | ({"item"} if in_loop else set())
            assert names <= allowed, f"{path.name}: {text!r} names {names - allowed}"
            for field in re.findall(r"inputs\.(\w+)", text):
                assert field in inputs, f"{path.name}: {text!r} reads an undeclared input {field!r}"


def test_loading_is_idempotent_and_keeps_the_enabled_switch(tmp_path: Path) -> None:
    first = load_system_directives()
    assert set(first.created) == SEED and not first.updated and not first.errors
    again = load_system_directives()
    assert (again.created, again.updated, set(again.unchanged)) == ([], [], SEED)
    assert Directive.objects.filter(system=True).count() == 8

    Directive.objects.filter(name="analyze_patterns").update(enabled=False)
    folder = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_DIR, folder)
    changed = folder / "analyze_patterns.yaml"
    changed.write_text(changed.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    result = load_system_directives(folder)
    assert result.updated == ["analyze_patterns"] and len(result.unchanged) == 7
    directive = Directive.objects.get(name="analyze_patterns")
    assert (directive.version, directive.enabled, directive.system) == ("1.1.0", False, True)


def test_loading_never_touches_a_users_directive(tmp_path: Path) -> None:
    mine = "name: analyze_patterns\ndescription: mine\nsteps:\n  - script: generate_summary\n"
    Directive.objects.upsert_from_yaml(mine)
    result = load_system_directives()
    assert list(result.conflicts) == ["analyze_patterns"] and len(result.created) == 7
    directive = Directive.objects.get(name="analyze_patterns")
    assert (directive.source, directive.system) == (mine, False)


def test_a_broken_file_is_reported_and_the_others_load(tmp_path: Path) -> None:
    folder = tmp_path / "directives"
    shutil.copytree(DIRECTIVES_DIR, folder)
    (folder / "zz_broken.yaml").write_text("name: zz\nsteps: [oops\n")
    result = load_system_directives(folder)
    assert len(result.created) == 8 and list(result.errors) == ["zz_broken.yaml"]
    assert "line 3" in result.errors["zz_broken.yaml"]


def test_the_command_loads_them_and_says_what_changed() -> None:
    out = StringIO()
    call_command("load_directives", stdout=out)
    assert "created heal_mcp_connection" in out.getvalue()
    assert out.getvalue().strip().splitlines()[-1].startswith("8 created, 0 updated, 0 unchanged")
    out = StringIO()
    call_command("load_directives", stdout=out)
    assert out.getvalue().startswith("0 created, 0 updated, 8 unchanged")

    Directive.objects.filter(name="detect_anomalies").delete()
    Directive.objects.upsert_from_yaml("name: detect_anomalies\nsteps: [{script: generate_summary}]")
    with pytest.raises(CommandError, match="1 system directive"):
        call_command("load_directives", stdout=StringIO(), stderr=StringIO())


def test_migrate_loads_them(settings: Any) -> None:
    settings.LOAD_SYSTEM_DIRECTIVES = True
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert set(Directive.objects.filter(system=True).values_list("name", flat=True)) == SEED
    settings.LOAD_SYSTEM_DIRECTIVES = False
    Directive.objects.all().delete()
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert not Directive.objects.exists()
