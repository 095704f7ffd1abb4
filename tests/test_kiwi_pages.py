"""Kiwi items on the pages, in the graph and search, and through the read-only REST API."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from kiwi.models import KiwiItem, KiwiWorkspace
from tests.kiwi_workspace import KiwiFixture, kiwi_workspace
from threads.models import Thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def kiwi(tmp_path: Path, settings: Any) -> KiwiFixture:
    fixture = kiwi_workspace(tmp_path)
    settings.MC = dataclasses.replace(settings.MC, kiwi=fixture.config())
    KiwiWorkspace.objects.configure(settings.MC.kiwi)
    KiwiWorkspace.objects.index_all()
    return fixture


def run_of(directive: str, thread_id: str) -> Thread:
    return Thread.objects.create(
        id=thread_id,
        user_input=f"Kiwi directive {directive}",
        execution_context={
            "kind": "kiwi_directive",
            "principal": "alice",
            "kiwi": {"key": f"shop/{directive}"},
        },
    )


def test_the_kiwi_page_lists_workspaces_items_and_the_files_that_did_not_parse(
    client: Client, kiwi: KiwiFixture
) -> None:
    page = client.get("/kiwi").content.decode()

    for name in ("deploy_app", "build_app", "base_setup", "linter", "notify", "deploy-checklist"):
        assert f">{name}</a>" in page
    assert 'href="/kiwi/shop/directive/deploy_app"' in page
    assert "directives/broken.md" in page
    assert "&lt;metadata&gt; has no &lt;permissions&gt; section (required, even if empty)" in page
    only_tools = client.get("/kiwi", {"kind": "tool"}).content.decode()
    assert ">linter</a>" in only_tools and ">deploy_app</a>" not in only_tools


def test_a_directive_page_shows_its_structure_runs_and_relationships(
    client: Client, kiwi: KiwiFixture
) -> None:
    run_of("deploy_app", "kiwi-run-1")
    run_of("build_app", "kiwi-run-2")

    response = client.get("/kiwi/shop/directive/deploy_app")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Deploy the shop to an environment" in page and "v1.2.0" in page
    assert "<code>environment</code>" in page and "Where to deploy (staging or production)" in page
    assert '&lt;execute resource="tool" id="time/*"/&gt;' in page
    assert "<b>check_window</b> Check the deployment window" in page and "<b>ship</b>" in page
    assert "The release runs on the environment" in page
    assert 'href="/threads/kiwi-run-1"' in page and "kiwi-run-2" not in page
    assert 'requires\n    <a href="/kiwi/shop/directive/build_app">build_app</a>' in page
    assert 'related by\n    <a href="/kiwi/shop/directive/smoke_tests">smoke_tests</a>' in page
    assert '<span>rollback</span> <span class="chip">not indexed</span>' in page
    assert 'references by\n    <a href="/kiwi/shop/knowledge/deploy-checklist">deploy-checklist</a>' in page


def test_knowledge_and_tool_pages_and_an_unknown_item(client: Client, kiwi: KiwiFixture) -> None:
    entry = client.get("/kiwi/shop/knowledge/rollback-notes").content.decode()
    assert "How to undo a deployment" in entry
    assert 'references\n    <a href="/kiwi/user/knowledge/kiwi-overview">kiwi-overview</a>' in entry
    tool = client.get("/kiwi/user/tool/notify").content.decode()
    assert "Post a message to the team channel" in tool and "executor http_client" in tool
    assert client.get("/kiwi/shop/directive/broken").status_code == 404  # did not parse
    assert client.get("/kiwi/shop/directive/nothing").status_code == 404


def test_kiwi_items_are_found_by_search_and_open_their_page(client: Client, kiwi: KiwiFixture) -> None:
    answer = client.get("/api/search", {"q": "deploy_app", "kinds": "kiwi"}).json()
    # The directive by its name, best; the entry that mentions it in its body.
    assert [(h["id"], h["url"]) for h in answer["results"]] == [
        ("shop/directive/deploy_app", f"/api/kiwi/items/{KiwiItem.objects.get(name='deploy_app').pk}"),
        (
            "shop/knowledge/deploy-checklist",
            f"/api/kiwi/items/{KiwiItem.objects.get(name='deploy-checklist').pk}",
        ),
    ]
    page = client.get("/search", {"q": "rollback"}).content.decode()
    assert 'href="/kiwi/shop/knowledge/rollback-notes"' in page
    assert "directives/broken.md" not in page


def test_the_graph_api_and_page_carry_the_kiwi_kinds(client: Client, kiwi: KiwiFixture) -> None:
    answer = client.get("/api/graph/entities", {"kind": "kiwi_tool"}).json()
    assert {e["id"] for e in answer["results"]} == {
        "kiwi_tool:shop/linter",
        "kiwi_tool:shop/scrape",
        "kiwi_tool:user/notify",
    }
    edges = client.get("/api/graph/relationships", {"entity": "kiwi_directive:user/base_setup"}).json()
    assert [(e["kind"], e["source"]) for e in edges["results"]] == [
        ("extends", "kiwi_directive:shop/build_app")
    ]
    assert 'value="kiwi_directive"' in client.get("/graph").content.decode()


def test_the_rest_api_lists_workspaces_items_and_errors_read_only(client: Client, kiwi: KiwiFixture) -> None:
    workspaces = {w["name"]: w for w in client.get("/api/kiwi/workspaces").json()}
    assert (workspaces["shop"]["items"], workspaces["shop"]["broken"]) == (8, 1)
    assert (workspaces["user"]["items"], workspaces["user"]["scope"]) == (3, "user")

    broken = client.get("/api/kiwi/items", {"broken": "true"}).json()["results"]
    assert [(b["workspace"], b["path"], b["error"]) for b in broken] == [
        ("shop", "directives/broken.md", "<metadata> has no <permissions> section (required, even if empty)")
    ]
    directives = client.get("/api/kiwi/items", {"kind": "directive", "broken": "false"}).json()["results"]
    assert {d["name"] for d in directives} == {"deploy_app", "build_app", "smoke_tests", "base_setup"}
    assert client.get("/api/kiwi/items", {"kinds": "x"}).status_code == 400

    deploy = KiwiItem.objects.get(name="deploy_app")
    detail = client.get(f"/api/kiwi/items/{deploy.pk}").json()
    assert detail["entity"] == "kiwi_directive:shop/deploy_app"
    assert [s["name"] for s in detail["data"]["steps"]] == ["check_window", "build", "ship"]
    assert {(link["kind"], link["target"]) for link in detail["links"]} == {
        ("requires", "build_app"),
        ("suggests", "smoke_tests"),
        ("related", "rollback"),
    }
    assert client.post("/api/kiwi/items", {}).status_code == 405
    assert client.get("/api/kiwi/items/999999").status_code == 404


def test_kiwi_pages_and_api_need_a_signed_in_user(anonymous_client: Client, kiwi: KiwiFixture) -> None:
    assert anonymous_client.get("/kiwi").status_code == 302
    assert anonymous_client.get("/api/kiwi/items").status_code == 401
