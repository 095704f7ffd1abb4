"""Kiwi workspaces indexed into the graph: exactly the documented items and relationships,
malformed files reported and skipped, changes re-indexed, deletions removed."""

from __future__ import annotations

import dataclasses
import os
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from kiwi.models import KiwiItem, KiwiWorkspace
from missioncontrol.config import ConfigError, parse_config
from missioncontrol.graph import Graph
from tests.kiwi_workspace import DEPLOY_APP, KiwiFixture, kiwi_workspace

pytestmark = pytest.mark.django_db

KIWI_ENTITIES = ("kiwi_directive", "kiwi_tool", "kiwi_knowledge")
KIWI_EDGES = ("requires", "suggests", "extends", "related", "references", "executed")


@pytest.fixture
def kiwi(tmp_path: Path, settings: Any) -> KiwiFixture:
    fixture = kiwi_workspace(tmp_path)
    settings.MC = dataclasses.replace(settings.MC, kiwi=fixture.config())
    KiwiWorkspace.objects.configure(settings.MC.kiwi)
    return fixture


def entities() -> dict[str, bool]:
    """Kiwi entity ids, each with whether it was indexed (False: only named by a link)."""
    _, found = Graph().entities(KIWI_ENTITIES, limit=10_000)
    return {e["id"]: e["data"]["indexed"] for e in found}


def edges() -> set[tuple[str, str, str]]:
    _, found = Graph().relationships(KIWI_EDGES, limit=10_000)
    return {
        (e["kind"], e["source"], e["target"]) for e in found if e["source"].startswith(("kiwi_", "thread:"))
    }


EXPECTED_ENTITIES = {
    "kiwi_directive:shop/deploy_app": True,
    "kiwi_directive:shop/build_app": True,
    "kiwi_directive:shop/smoke_tests": True,
    "kiwi_directive:user/base_setup": True,
    "kiwi_directive:shop/rollback": False,  # named by deploy_app, held by no workspace
    "kiwi_tool:shop/linter": True,
    "kiwi_tool:shop/scrape": True,
    "kiwi_tool:user/notify": True,
    "kiwi_knowledge:shop/deploy-checklist": True,
    "kiwi_knowledge:shop/rollback-notes": True,
    "kiwi_knowledge:user/kiwi-overview": True,
}
EXPECTED_EDGES = {
    ("requires", "kiwi_directive:shop/deploy_app", "kiwi_directive:shop/build_app"),
    ("suggests", "kiwi_directive:shop/deploy_app", "kiwi_directive:shop/smoke_tests"),
    ("related", "kiwi_directive:shop/deploy_app", "kiwi_directive:shop/rollback"),
    ("related", "kiwi_directive:shop/smoke_tests", "kiwi_directive:shop/deploy_app"),
    # Resolved in the user space, as Kiwi resolves a name its project lacks.
    ("extends", "kiwi_directive:shop/build_app", "kiwi_directive:user/base_setup"),
    # Frontmatter `references` naming a directive; [[mentions]] naming entries.
    ("references", "kiwi_knowledge:shop/deploy-checklist", "kiwi_directive:shop/deploy_app"),
    ("references", "kiwi_knowledge:shop/deploy-checklist", "kiwi_knowledge:shop/rollback-notes"),
    ("references", "kiwi_knowledge:shop/rollback-notes", "kiwi_knowledge:shop/deploy-checklist"),
    ("references", "kiwi_knowledge:shop/rollback-notes", "kiwi_knowledge:user/kiwi-overview"),
}


def test_it_indexes_exactly_the_documented_items_and_relationships(kiwi: KiwiFixture) -> None:
    reports = KiwiWorkspace.objects.index_all()

    assert len(reports["shop"].added) == 8 and len(reports["user"].added) == 3
    assert entities() == EXPECTED_ENTITIES
    assert edges() == EXPECTED_EDGES


def test_it_keeps_each_directives_parsed_structure(kiwi: KiwiFixture) -> None:
    KiwiWorkspace.objects.index_all()

    deploy = KiwiItem.objects.get(workspace__name="shop", kind="directive", name="deploy_app")
    assert (deploy.version, deploy.title, deploy.category) == (
        "1.2.0",
        "Deploy the application",
        "deployment",
    )
    assert deploy.description == "Deploy the shop to an environment"
    assert deploy.path == "directives/deploy/deploy_app.md"
    assert deploy.permissions == [
        {"tag": "execute", "resource": "tool", "attrs": {"resource": "tool", "id": "time/*"}},
        {"tag": "read", "resource": "filesystem", "attrs": {"resource": "filesystem", "path": "src/**"}},
        {"tag": "execute", "resource": "shell", "attrs": {"resource": "shell", "command": "make"}},
    ]
    assert deploy.data["inputs"] == [
        {
            "name": "environment",
            "type": "string",
            "required": True,
            "default": None,
            "description": "Where to deploy (staging or production)",
        },
        {
            "name": "dry_run",
            "type": "boolean",
            "required": False,
            "default": "false",
            "description": "Only say what would be done",
        },
    ]
    assert [(s["name"], s["description"]) for s in deploy.steps] == [
        ("check_window", "Check the deployment window"),
        ("build", "Build the release"),
        ("ship", "Upload the release"),
    ]
    assert deploy.steps[1]["action"] == "Run `make release && ls dist/*.whl`"  # CDATA
    assert deploy.steps[2]["action"].endswith("show it as <![CDATA[x]]>.")  # placeholders expanded
    assert deploy.data["outputs"] == {
        "success": "The release runs on the environment",
        "failure": "Roll back with the rollback directive",
    }
    assert deploy.data["relationships"] == [
        {"kind": "requires", "directive": "build_app"},
        {"kind": "suggests", "directive": "smoke_tests"},
        {"kind": "related", "directive": "rollback"},
    ]
    linter = KiwiItem.objects.get(kind="tool", name="linter")
    assert (linter.version, linter.description, linter.category) == (
        "1.0.0",
        "Lint the project's Python files.",
        "utility",
    )
    assert linter.data["executor_id"] == "python_runtime"
    entry = KiwiItem.objects.get(kind="knowledge", name="deploy-checklist")
    assert (entry.title, entry.version, entry.data["tags"]) == (
        "Deploy checklist",
        "1.0.0",
        ["deployment", "checklist"],
    )


def test_a_malformed_file_is_reported_with_its_path_and_reason_and_the_rest_is_indexed(
    kiwi: KiwiFixture,
) -> None:
    reports = KiwiWorkspace.objects.index_all()

    reason = "<metadata> has no <permissions> section (required, even if empty)"
    assert reports["shop"].errors == {"directives/broken.md": reason}
    broken = KiwiItem.objects.broken().get()
    assert (broken.workspace.name, broken.path, broken.error) == ("shop", "directives/broken.md", reason)
    assert "kiwi_directive:shop/broken" not in entities()

    out = StringIO()
    call_command("index_kiwi", stdout=out)
    assert f"not parsed: directives/broken.md: {reason}" in out.getvalue()


def test_a_changed_file_is_reindexed_and_an_untouched_one_is_not_read(kiwi: KiwiFixture) -> None:
    KiwiWorkspace.objects.index_all()
    deploy = kiwi.ai / "directives" / "deploy" / "deploy_app.md"
    deploy.write_text(
        DEPLOY_APP.replace('version="1.2.0"', 'version="1.3.0"').replace(
            '<suggests directive="smoke_tests" />', '<extends directive="base_setup" />'
        )
    )
    linter = kiwi.ai / "tools" / "utility" / "linter.py"
    os.utime(linter, ns=(linter.stat().st_atime_ns, linter.stat().st_mtime_ns + 10**9))  # touched only

    report = KiwiWorkspace.objects.get(name="shop").index()

    assert report.updated == ["directives/deploy/deploy_app.md"]
    assert (report.added, report.removed, report.unchanged) == ([], [], 7)
    assert KiwiItem.objects.get(name="deploy_app").version == "1.3.0"
    assert edges() == (
        EXPECTED_EDGES - {("suggests", "kiwi_directive:shop/deploy_app", "kiwi_directive:shop/smoke_tests")}
        | {("extends", "kiwi_directive:shop/deploy_app", "kiwi_directive:user/base_setup")}
    )
    assert KiwiWorkspace.objects.get(name="shop").index().unchanged == 8  # nothing else moved


def test_a_fixed_file_joins_and_a_deleted_one_leaves(kiwi: KiwiFixture) -> None:
    KiwiWorkspace.objects.index_all()
    broken = kiwi.ai / "directives" / "broken.md"
    broken.write_text(broken.read_text().replace("</description>", "</description><permissions/>"))
    (kiwi.ai / "knowledge" / "ops" / "rollback-notes.md").unlink()

    report = KiwiWorkspace.objects.get(name="shop").index()

    assert report.removed == ["knowledge/ops/rollback-notes.md"] and report.errors == {}
    assert not KiwiItem.objects.broken().exists()
    assert entities() == (
        {k: v for k, v in EXPECTED_ENTITIES.items() if k != "kiwi_knowledge:shop/rollback-notes"}
        | {"kiwi_directive:shop/broken": True, "kiwi_knowledge:shop/rollback-notes": False}
    )
    # What it said is gone; what still names it, names an entity no file holds.
    assert edges() == {e for e in EXPECTED_EDGES if e[1] != "kiwi_knowledge:shop/rollback-notes"}


def test_every_documented_reason_to_reject_a_file_is_reported(tmp_path: Path) -> None:
    ai = tmp_path / "p" / ".ai"
    files = {
        "directives/no_block.md": "# Just prose\n",
        "directives/bad_xml.md": '<directive name="x"><metadata></directive>',
        "directives/no_metadata.md": '<directive name="x"><process/></directive>',
        "tools/bad.py": "def f(:\n",
        "tools/bad.yaml": "- a list\n- not a mapping\n",
        "knowledge/unclosed.md": "---\nzettel_id: x\n\nno end\n",
        "knowledge/bad_yaml.md": "---\ntitle: [unclosed\n---\nbody\n",
    }
    for relative, text in files.items():
        (ai / relative).parent.mkdir(parents=True, exist_ok=True)
        (ai / relative).write_text(text)
    workspace = KiwiWorkspace.objects.create(name="p", root=str(ai), project_path=str(ai.parent))

    errors = workspace.index().errors

    assert set(errors) == set(files)
    assert errors["directives/no_block.md"] == "no <directive> XML block"
    assert errors["directives/bad_xml.md"].startswith("invalid directive XML: mismatched tag")
    assert errors["directives/no_metadata.md"] == "the directive has no <metadata> section"
    assert errors["tools/bad.py"].startswith("invalid Python:") and "(line 1)" in errors["tools/bad.py"]
    assert errors["tools/bad.yaml"] == "expected a YAML mapping, got list"
    assert errors["knowledge/unclosed.md"] == "the YAML frontmatter is never closed (no second ---)"
    assert errors["knowledge/bad_yaml.md"].startswith("invalid YAML frontmatter:")


def test_a_workspace_that_vanished_loses_its_items_and_says_why(kiwi: KiwiFixture, tmp_path: Path) -> None:
    KiwiWorkspace.objects.index_all()
    (kiwi.project / ".ai").rename(tmp_path / "elsewhere")

    report = KiwiWorkspace.objects.get(name="shop").index()

    assert len(report.removed) == 8
    assert KiwiWorkspace.objects.get(name="shop").last_error == f"{kiwi.ai} is not a folder"
    assert not KiwiItem.objects.filter(workspace__name="shop").exists()


def test_the_kiwi_section_configures_workspaces_and_rejects_what_it_cannot_use(tmp_path: Path) -> None:
    config = parse_config(
        {
            "kiwi": {
                "user_space": str(tmp_path / "u"),
                "index_interval": "2m",
                "workspaces": [{"name": "shop", "project_path": str(tmp_path / "shop"), "server": "kiwi"}],
            }
        }
    ).kiwi
    assert config.index_interval == 120 and config.workspaces[0].server == "kiwi"
    assert parse_config({"kiwi": {"user_space": False}}).kiwi.user_space is None
    with pytest.raises(ConfigError, match=r"kiwi.workspaces\[0\].project_path: required"):
        parse_config({"kiwi": {"workspaces": [{"name": "x"}]}})
    with pytest.raises(ConfigError, match="kiwi.paths: unknown key"):
        parse_config({"kiwi": {"paths": []}})

    KiwiWorkspace.objects.configure(config)
    assert {(w.name, w.scope, w.root) for w in KiwiWorkspace.objects.all()} == {
        ("shop", "project", str(tmp_path / "shop" / ".ai")),
        ("user", "user", str(tmp_path / "u")),
    }
    KiwiWorkspace.objects.configure(parse_config({"kiwi": {"user_space": False}}).kiwi)
    assert not KiwiWorkspace.objects.exists()  # configured ones go when the configuration drops them
