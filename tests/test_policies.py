"""Policy rules on routed calls: evaluation, inheritance, the rule cache, and the REST CRUD.

The end-to-end tests route calls to real MCP servers (mcp-server-git, mcp-server-time)
through the aggregated server and the REST call; see test_escalation.py for alerts.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from mcp import Client

from audit.inheritance import ancestors
from audit.models import PermissionEvent, PolicyRule
from audit.policy import (
    ANONYMOUS,
    LOCAL_CACHES,
    STAMP_KEY,
    Link,
    Subject,
    action_of,
    decide,
    policies,
)
from mcps.endpoint.gate import PARENT_META_KEY, THREAD_META_KEY
from mcps.endpoint.http import mcp_endpoint
from mcps.endpoint.recorder import CallRecorder, Session
from mcps.endpoint.router import LocalRouter
from mcps.endpoint.server import build_server
from mcps.gateway.service import Gateway
from missioncontrol.ingest.batcher import EventBatcher
from tests.conftest import event, store
from tests.mcp_servers import api
from threads.models import ExecutionStep, Thread

ALICE = Subject(token="7", user="alice", teams=("ops",))
BOB = Subject(user="bob", teams=("dev",))


def rule(effect: str, **fields: Any) -> PolicyRule:
    return PolicyRule.objects.create(effect=effect, **fields)


def verdict(subject: Subject, server: str, tool: str, action: str = "execute") -> Any:
    return decide(policies.rules(), [Link("T", subject)], server, tool, action)


# -- evaluation ----------------------------------------------------------------------


@pytest.mark.django_db
def test_with_no_rule_the_configured_default_decides(settings: Any) -> None:
    assert verdict(ALICE, "git", "git_log").granted
    settings.MC = dataclasses.replace(
        settings.MC, policy=dataclasses.replace(settings.MC.policy, default="deny")
    )
    policies.invalidate()
    denied = verdict(ALICE, "git", "git_log")
    assert not denied.granted and denied.reason.endswith("no rule matched: default deny")


@pytest.mark.django_db
def test_subjects_match_by_token_user_team_or_anyone() -> None:
    rule("deny", subject_kind="token", subject_value="7", server="a", description="token 7")
    rule("deny", subject_kind="user", subject_value="bob", server="b", description="bob")
    rule("deny", subject_kind="team", subject_value="ops", server="c", description="ops")
    rule("deny", subject_kind="any", server="d", description="anyone")
    assert [verdict(ALICE, s, "t").granted for s in "abcd"] == [False, True, False, False]
    assert [verdict(BOB, s, "t").granted for s in "abcd"] == [True, False, True, False]
    assert [verdict(ANONYMOUS, s, "t").granted for s in "abcd"] == [True, True, True, False]


@pytest.mark.django_db
def test_server_and_tool_globs_and_the_action_narrow_a_rule() -> None:
    rule("deny", server="git*", tool="git_c*", action="write", description="no destructive git")
    assert not verdict(ALICE, "git", "git_checkout", "write").granted
    assert not verdict(ALICE, "gitlab", "git_commit", "write").granted
    assert verdict(ALICE, "git", "git_checkout", "read").granted  # another action
    assert verdict(ALICE, "git", "git_log", "write").granted  # another tool
    assert verdict(ALICE, "time", "git_commit", "write").granted  # another server


@pytest.mark.django_db
def test_higher_priority_decides_and_deny_wins_a_tie() -> None:
    broad = rule("deny", server="git", priority=1, description="no git")
    narrow = rule("allow", server="git", tool="git_log", priority=5, description="but git log")
    assert verdict(ALICE, "git", "git_log").granted
    checked = verdict(ALICE, "git", "git_status")
    assert not checked.granted and checked.rule.id == broad.id
    assert checked.rules_checked == [
        {"id": narrow.id, "description": "but git log", "effect": "allow", "matched": False},
        {"id": broad.id, "description": "no git", "effect": "deny", "matched": True},
    ]
    tie = rule("deny", server="git", tool="git_log", priority=5, description="tie")
    decided = verdict(ALICE, "git", "git_log")
    assert not decided.granted and decided.rule.id == tie.id


@pytest.mark.django_db
def test_disabled_rules_are_not_considered() -> None:
    rule("deny", server="git", enabled=False)
    assert verdict(ALICE, "git", "git_log").granted
    assert verdict(ALICE, "git", "git_log").rules_checked == []


def test_the_action_comes_from_the_tools_annotations() -> None:
    assert action_of({"readOnlyHint": True, "destructiveHint": False}) == "read"
    assert action_of({"readOnlyHint": False, "destructiveHint": True}) == "write"
    assert action_of({"readOnlyHint": False, "destructiveHint": False}) == "execute"
    assert action_of(None) == "execute"


def test_a_subject_is_labelled_by_user_then_token_or_is_anonymous() -> None:
    assert ANONYMOUS.label == "anonymous" and Subject(token="9").label == "token:9"
    assert Subject.of_thread({"subject": ALICE.as_dict()}) == ALICE
    assert Subject.of_thread({"principal": "carol"}) == Subject(user="carol")


# -- inheritance ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_child_never_gets_what_an_ancestor_is_denied() -> None:
    no_git = rule("deny", subject_kind="user", subject_value="bob", server="git", description="bob: no git")
    chain = [Link("ROOT", BOB), Link("CHILD", ALICE)]
    decision = decide(policies.rules(), chain, "git", "git_log", "read")
    assert not decision.granted and decision.rule.id == no_git.id
    assert "inherited from thread ROOT (bob)" in decision.reason
    assert decision.inheritance_chain == [
        {"thread_id": "ROOT", "subject": "bob", "granted": False, "rule": no_git.id},
        {"thread_id": "CHILD", "subject": "alice", "granted": True, "rule": None},
    ]
    assert decide(policies.rules(), chain, "time", "get_current_time", "read").granted


@pytest.mark.django_db(transaction=True)
async def test_ancestors_are_read_from_recorded_threads_root_first() -> None:
    await sync_to_async(store)(
        event("thread.started", thread_id="ROOT", execution_context={"subject": BOB.as_dict()}),
        event(
            "thread.started", 1, thread_id="MID", parent_id="ROOT", execution_context={"principal": "carol"}
        ),
        mcp_id="agents",
    )
    links = await ancestors("MID")
    assert links == [Link("ROOT", BOB), Link("MID", Subject(user="carol"))]
    assert await ancestors("NOWHERE") == [Link("NOWHERE", ANONYMOUS)]  # unknown: anonymous


# -- the cache -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_saved_rule_is_in_force_at_once_and_other_processes_see_a_new_stamp() -> None:
    assert verdict(ALICE, "git", "git_log").granted
    before = caches["shared"].get(STAMP_KEY)
    blocking = rule("deny", server="git")
    assert caches["shared"].get(STAMP_KEY) != before
    assert not verdict(ALICE, "git", "git_log").granted
    blocking.delete()
    assert verdict(ALICE, "git", "git_log").granted


@pytest.mark.django_db
def test_rules_are_loaded_once_then_served_from_memory(django_assert_num_queries: Any) -> None:
    rule("deny", server="git")
    policies.rules()
    with django_assert_num_queries(0):
        for _ in range(100):
            verdict(ALICE, "git", "git_log")


@pytest.mark.django_db
def test_a_stamp_changed_by_another_process_reloads_the_rules(monkeypatch: Any) -> None:
    rule("deny", server="git")
    assert not verdict(ALICE, "git", "git_log").granted
    PolicyRule.objects.all()._raw_delete(PolicyRule.objects.db)  # no signal: as if elsewhere
    caches["shared"].set(STAMP_KEY, "from-another-process")
    monkeypatch.setattr("audit.policy.REFRESH_SECONDS", 0.0)
    assert verdict(ALICE, "git", "git_log").granted


@pytest.mark.django_db(transaction=True)
async def test_a_rules_check_with_no_change_stays_on_the_event_loop_unless_the_stamp_is_in_redis(
    monkeypatch: Any,
) -> None:
    await sync_to_async(rule)("deny", server="git")
    await policies.arules()
    monkeypatch.setattr("audit.policy.REFRESH_SECONDS", 0.0)  # every call checks the stamp
    hops: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        hops.append(args[0])
        return sync_to_async(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr("audit.policy.sync_to_async", counted)
        assert not decide(await policies.arules(), [Link("T", ALICE)], "git", "git_log", "execute").granted
    # The embedded default's file cache is read right on the loop; Redis through a thread.
    assert len(hops) == (0 if isinstance(caches["shared"], LOCAL_CACHES) else 1)
    # Changed elsewhere: the stamp differs, and the reload reads the database in a thread.
    await sync_to_async(PolicyRule.objects.all()._raw_delete)(PolicyRule.objects.db)
    caches["shared"].set(STAMP_KEY, "from-another-process")
    assert decide(await policies.arules(), [Link("T", ALICE)], "git", "git_log", "execute").granted


# -- REST ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_policies_are_created_listed_updated_and_deleted_over_rest(client: Any) -> None:
    created = client.post(
        "/api/permissions/policies",
        {"subject_kind": "team", "subject_value": "ops", "server": "git", "tool": "git_*", "effect": "deny",
         "priority": 10, "description": "ops: no git"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    assert created.json()["action"] == "any" and created.json()["enabled"] is True
    assert not verdict(ALICE, "git", "git_push").granted
    listed = client.get("/api/permissions/policies").json()
    assert [r["id"] for r in listed] == [rule_id]
    patched = client.patch(
        f"/api/permissions/policies/{rule_id}", {"enabled": False}, content_type="application/json"
    )
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert verdict(ALICE, "git", "git_push").granted
    assert client.delete(f"/api/permissions/policies/{rule_id}").status_code == 204
    assert client.get(f"/api/permissions/policies/{rule_id}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"effect": "maybe"}, "effect"),
        ({"effect": "deny", "subject_kind": "user"}, "subject_value"),
        ({"effect": "deny", "subject_kind": "any", "subject_value": "bob"}, "subject_value"),
        ({"effect": "deny", "server": ""}, "server"),
        ({"effect": "deny", "tool": "git log"}, "tool"),
        ({"effect": "deny", "action": "delete"}, "action"),
        ({"effect": "deny", "priority": "high"}, "priority"),
        ({}, "effect"),
    ],
)
def test_a_bad_rule_is_a_400_naming_its_field(client: Any, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/permissions/policies", body, content_type="application/json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not PolicyRule.objects.exists()


@pytest.mark.django_db
def test_the_admin_lists_rules_with_their_columns(admin_client: Any) -> None:
    rule("deny", subject_kind="user", subject_value="bob", server="git", description="bob: no git")
    page = admin_client.get("/admin/audit/policyrule/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "bob: no git" in html and "Priority" in html and "Subject value" in html


# -- routed calls to real servers ----------------------------------------------------


@dataclasses.dataclass
class Endpoint:
    server: Any
    batcher: EventBatcher
    recorder: CallRecorder
    subject: Subject = ANONYMOUS

    def client(self) -> Client:
        return Client(self.server)  # type: ignore[arg-type]


@pytest.fixture
async def endpoint(gateway: Gateway) -> AsyncIterator[Endpoint]:
    batcher = EventBatcher("test calls", linger=0)
    recorder = CallRecorder(batcher)
    holder: list[Endpoint] = []

    def session_of(ctx: Any) -> Session:
        parent = (ctx.meta or {}).get(PARENT_META_KEY)
        who = holder[0].subject
        return recorder.session(
            ("test", who.label, parent or ""), via="test", client={}, subject=who, parent_id=parent
        )

    ep = Endpoint(build_server(LocalRouter(gateway), recorder, session_of), batcher, recorder)
    holder.append(ep)
    yield ep
    await batcher.flush()


def branches(repo: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "branch", "--format=%(refname:short)"], capture_output=True)
    return out.stdout.decode().split()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="the gateway fixture runs node")
async def test_a_deny_policy_blocks_a_routed_call_before_the_server_sees_it(
    endpoint: Endpoint, repo: Path
) -> None:
    no_branches = await PolicyRule.objects.acreate(
        subject_kind="user", subject_value="alice", server="git", tool="git_create_branch", effect="deny",
        priority=10, description="alice may not create branches",
    )  # fmt: skip
    endpoint.subject = ALICE
    async with endpoint.client() as client:
        result = await client.call_tool(
            "git__git_create_branch", {"repo_path": str(repo), "branch_name": "x"}
        )
    assert result.is_error
    text = result.content[0].text
    assert f"rule #{no_branches.id} (alice may not create branches)" in text and "not forwarded" in text
    assert result.meta["mc/policy"]["rule"] == no_branches.id
    assert "x" not in branches(repo)  # the server never saw the call

    endpoint.subject = BOB  # the same call for someone the rule does not name goes through
    async with endpoint.client() as client:
        allowed = await client.call_tool(
            "git__git_create_branch", {"repo_path": str(repo), "branch_name": "y"}
        )
    assert not allowed.is_error and "y" in branches(repo)

    await endpoint.batcher.flush()
    denial = await PermissionEvent.objects.aget(user_id="alice")
    thread_id = result.meta[THREAD_META_KEY]
    assert (denial.thread_id, denial.resource, denial.granted, denial.severity) == (
        thread_id, "git/git_create_branch", False, "warn"
    )  # fmt: skip
    assert denial.action == "execute"  # git_create_branch: neither read-only nor destructive
    assert {"id": no_branches.id, "description": "alice may not create branches", "effect": "deny",
            "matched": True} in denial.rules_checked  # fmt: skip
    assert denial.inheritance_chain == [
        {"thread_id": thread_id, "subject": "alice", "granted": False, "rule": no_branches.id}
    ]
    steps = [s async for s in ExecutionStep.objects.filter(thread_id=thread_id).order_by("sequence")]
    assert [(s.step_type, s.status, s.description) for s in steps] == [
        ("tool_call", "complete", "git__git_create_branch"),
        ("tool_result", "error", "git__git_create_branch: denied"),
    ]
    assert steps[1].details["denied"] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="the gateway fixture runs node")
async def test_a_child_thread_named_in_meta_inherits_its_parents_denials(
    endpoint: Endpoint, repo: Path
) -> None:
    await PolicyRule.objects.acreate(
        subject_kind="user", subject_value="bob", server="git", effect="deny", description="bob: no git"
    )
    endpoint.subject = BOB
    async with endpoint.client() as client:
        parent_call = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    parent_id = parent_call.meta[THREAD_META_KEY]

    endpoint.subject = ALICE  # alice may use git, but not as bob's sub-agent
    async with endpoint.client() as client:
        own = await client.call_tool("git__git_status", {"repo_path": str(repo)})
        as_child = await client.call_tool(
            "git__git_status", {"repo_path": str(repo)}, meta={PARENT_META_KEY: parent_id}
        )
    assert not own.is_error
    assert as_child.is_error and f"inherited from thread {parent_id} (bob)" in as_child.content[0].text

    await endpoint.batcher.flush()
    child_id = as_child.meta[THREAD_META_KEY]
    child = await Thread.objects.aget(id=child_id)
    assert child.parent_id == parent_id and child.execution_context["subject"]["user"] == "alice"
    check = await PermissionEvent.objects.aget(thread_id=child_id)
    assert [(link["thread_id"], link["granted"]) for link in check.inheritance_chain] == [
        (parent_id, False),
        (child_id, True),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="the gateway fixture runs node")
async def test_a_denied_rest_call_is_a_403_and_is_recorded(gateway: Gateway) -> None:
    await PolicyRule.objects.acreate(
        server="time", tool="*", action="read", effect="deny", description="no time"
    )
    response = await api(
        "POST", "/api/mcps/time/tools/get_current_time/call", {"arguments": {"timezone": "UTC"}}
    )
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"]["field"] == "policy" and "no time" in body["error"]["reason"]
    allowed = await api("POST", "/api/mcps/everything/tools/echo/call", {"arguments": {"message": "hi"}})
    assert allowed.status_code == 200 and allowed.json()["thread_id"].startswith("mcp-")
    await mcp_endpoint.batcher.flush()
    check = await PermissionEvent.objects.aget(thread_id=body["thread_id"])
    # Checked as the signed-in user (the superuser the test client signs in as).
    assert (check.granted, check.action, check.user_id) == (False, "read", "root")
    assert await Thread.objects.filter(id=body["thread_id"], status="error").aexists()


def test_the_policy_section_is_validated_naming_the_key() -> None:
    from missioncontrol.config import ConfigError, parse_config

    parsed = parse_config({"policy": {"default": "deny", "escalation": {"denials": 5, "window": "1h"}}})
    assert parsed.policy.default == "deny"
    assert (parsed.policy.escalation.denials, parsed.policy.escalation.window) == (5, 3600)
    assert parsed.policy.escalation.learning_period == 7 * 86400
    for raw, key in [
        ({"default": "maybe"}, "policy.default"),
        ({"escalation": {"denials": 0}}, "policy.escalation.denials"),
        ({"escalation": {"window": "soon"}}, "policy.escalation.window"),
        ({"strict": True}, "policy.strict"),
    ]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config({"policy": raw})


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="the gateway fixture runs node")
async def test_a_routed_grant_after_repeated_denials_is_flagged_as_an_escalation(endpoint: Endpoint) -> None:
    blocking = await PolicyRule.objects.acreate(server="time", effect="deny", description="no time")
    endpoint.subject = ALICE
    async with endpoint.client() as client:
        for _ in range(3):
            assert (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error
        await blocking.adelete()
        granted = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert not granted.is_error
    await endpoint.batcher.flush()
    checks = [c async for c in PermissionEvent.objects.filter(user_id="alice").order_by("timestamp")]
    assert [(c.granted, c.escalation_detected) for c in checks] == [(False, False)] * 3 + [(True, True)]
    assert checks[-1].severity == "critical"
    assert [e["rule"] for e in checks[-1].escalations] == ["grant_after_denials"]
