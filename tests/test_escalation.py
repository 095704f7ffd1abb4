"""Escalation detection on every stored permission check: each rule on its crafted
scenario, quiet on a benign one, and the live alert."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from audit.models import PermissionEvent
from tests.conftest import event, post_batch, store

DAY = 86400
pytestmark = pytest.mark.django_db


def check(seconds: float = 0, **fields: Any) -> dict[str, Any]:
    return event("permission.check", seconds, **fields)


def started(thread_id: str, parent_id: str | None = None) -> dict[str, Any]:
    return event("thread.started", thread_id=thread_id, parent_id=parent_id)


def flagged(event_id: str) -> tuple[bool, str, list[str]]:
    row = PermissionEvent.objects.get(id=event_id)
    return row.escalation_detected, row.severity, [e["rule"] for e in row.escalations]


QUIET = (False, "info", [])


# -- a child granted what its parent lacks ---------------------------------------------


def test_a_child_granted_what_its_parent_was_denied_escalates() -> None:
    store(started("P"), started("C", "P"), mcp_id="agents")
    store(
        check(1, id="p-denied", thread_id="P", resource="git/push", granted=False),
        check(2, id="c-granted", thread_id="C", resource="git/push", user_id="bob"),
    )
    assert flagged("c-granted") == (True, "critical", ["child_exceeds_parent"])
    assert (
        "parent thread P was denied git/push"
        in PermissionEvent.objects.get(id="c-granted").escalations[0]["detail"]
    )


def test_a_child_granted_what_its_parent_never_checked_is_quiet() -> None:
    """Agents hand sub-agents work they never do themselves: no verdict of the parent, no alarm."""
    store(started("P"), started("C", "P"), mcp_id="agents")
    store(
        check(1, id="p", thread_id="P", resource="time/convert_time"),
        check(2, id="c", thread_id="C", resource="time/get_current_time"),
        check(3, id="p-later", thread_id="P", resource="time/get_current_time"),
    )
    assert flagged("c") == QUIET
    assert flagged("p-later") == QUIET


def test_the_parents_latest_check_of_the_resource_decides() -> None:
    store(started("P"), started("C", "P"), mcp_id="agents")
    store(
        check(1, thread_id="P", resource="git/push", granted=False),
        check(2, thread_id="P", resource="git/push"),
        check(3, id="after-regrant", thread_id="C", resource="git/push"),
        check(4, thread_id="P", resource="db/drop"),
        check(5, thread_id="P", resource="db/drop", granted=False),
        check(6, id="after-revoke", thread_id="C", resource="db/drop"),
    )
    assert flagged("after-regrant") == QUIET
    assert flagged("after-revoke")[2] == ["child_exceeds_parent"]


def test_a_chain_of_thread_ids_names_the_ancestors_whose_denials_count() -> None:
    store(started("G"), started("P", "G"), started("C", "P"), mcp_id="agents")
    store(
        check(1, thread_id="G", resource="git/push", granted=False),
        check(2, id="c", thread_id="C", resource="git/push", inheritance_chain=["G", "P", "C"]),
    )
    ((rule, detail),) = [(e["rule"], e["detail"]) for e in PermissionEvent.objects.get(id="c").escalations]
    assert (rule, detail) == (
        "child_exceeds_parent",
        "ancestor thread G was denied git/push (its latest check of it)",
    )


def test_a_child_granted_what_its_parent_holds_is_quiet() -> None:
    store(started("P"), started("C", "P"), mcp_id="agents")
    store(
        check(1, id="p", thread_id="P", resource="git/log"),
        check(2, id="c", thread_id="C", resource="git/log"),
    )
    assert flagged("c") == QUIET


def test_a_chain_with_verdicts_decides_for_the_gateways_own_checks() -> None:
    store(started("P"), started("C", "P"), mcp_id="agents")
    lacking = [{"thread_id": "P", "granted": False}, {"thread_id": "C", "granted": True}]
    holding = [{"thread_id": "P", "granted": True}, {"thread_id": "C", "granted": True}]
    store(
        check(0, thread_id="P", resource="time/now", granted=False),
        check(1, id="lacks", thread_id="C", resource="git/push", inheritance_chain=lacking),
        check(2, id="holds", thread_id="C", resource="time/now", inheritance_chain=holding),
    )
    assert flagged("lacks")[2] == ["child_exceeds_parent"]
    assert PermissionEvent.objects.get(id="lacks").escalations[0]["detail"] == (
        "ancestor thread P does not hold git/push: its own verdict in the chain is a denial"
    )
    assert flagged("holds") == QUIET  # the parent's verdict is in the chain: its history is not read


# -- a grant after repeated denials -------------------------------------------------


def test_a_grant_after_three_denials_in_the_window_escalates() -> None:
    denials = [check(i * 60, resource="db/drop", granted=False) for i in range(3)]
    store(*denials, check(200, id="grant", resource="db/drop"))
    assert flagged("grant") == (True, "critical", ["grant_after_denials"])
    assert PermissionEvent.objects.get(id=denials[0]["id"]).severity == "warn"  # denials stay as they were


def test_the_batchs_denied_pairs_come_back_once_each_however_many_denials() -> None:
    from audit import escalation

    store(*[check(i, resource="db/drop", granted=False) for i in range(5)])
    last = PermissionEvent.objects.latest("timestamp").timestamp
    grant = {**check(10, resource="db/drop"), "timestamp": last}
    assert list(escalation.denied_pairs([grant], 600)) == [(grant["user_id"], "db/drop")]


def test_fewer_denials_or_older_ones_or_another_subject_stay_quiet() -> None:
    store(
        check(0, resource="db/drop", granted=False),
        check(60, resource="db/drop", granted=False),
        check(120, id="after-two", resource="db/drop"),
        check(130, resource="db/read", granted=False, user_id="carol"),
        check(140, resource="db/read", granted=False, user_id="carol"),
        check(150, resource="db/read", granted=False, user_id="carol"),
        check(5000, id="much-later", resource="db/read", user_id="carol"),
        check(160, id="someone-else", resource="db/read", user_id="dave"),
    )
    assert flagged("after-two") == QUIET
    assert flagged("much-later") == QUIET  # the denials are older than the 10 min window
    assert flagged("someone-else") == QUIET


def test_the_threshold_and_window_are_configurable(settings: Any) -> None:
    escalation = dataclasses.replace(settings.MC.policy.escalation, denials=1, window=30)
    settings.MC = dataclasses.replace(
        settings.MC, policy=dataclasses.replace(settings.MC.policy, escalation=escalation)
    )
    store(check(0, resource="db/drop", granted=False), check(10, id="grant", resource="db/drop"))
    assert flagged("grant")[2] == ["grant_after_denials"]


# -- a new resource class -----------------------------------------------------------


def test_a_subject_reaching_a_new_server_after_its_learning_period_escalates() -> None:
    store(check(0, resource="git/log"), check(3 * DAY, resource="git/status"))
    store(
        check(8 * DAY, id="new-class", resource="payments/refund"),
        check(8 * DAY + 1, id="known", resource="git/push"),
    )
    assert flagged("new-class") == (True, "critical", ["new_resource_class"])
    assert flagged("known") == QUIET  # git was used before


def test_everything_is_baseline_during_the_learning_period() -> None:
    store(check(0, resource="git/log"), check(6 * DAY, id="young", resource="payments/refund"))
    assert flagged("young") == QUIET  # a new install or a new agent is not all alerts


# -- live -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_escalation_is_an_alert_on_global_and_the_threads_permission_channel(
    socket: Any, open_key: str
) -> None:
    denials = [check(i, resource="db/drop", granted=False, thread_id="T-9") for i in range(3)]
    response = await post_batch({"events": [{**started("T-9"), "mcp_id": "agents"}, *denials]}, open_key)
    assert response.status_code == 200
    async with socket() as ws:
        await ws.subscribe("global")
        await ws.subscribe("permission:T-9")
        await post_batch({"events": [check(9, id="grant", resource="db/drop", thread_id="T-9")]}, open_key)
        received: dict[str, list[dict[str, Any]]] = {}
        for _ in range(2):
            frame = await ws.recv()
            received[frame["channel"]] = frame["payload"]["events"]
    (alert,) = [e for e in received["global"] if e["type"] == "permission.escalation"]
    assert alert["check_id"] == "grant" and alert["severity"] == "critical"
    assert [r["rule"] for r in alert["rules"]] == ["grant_after_denials"]
    on_thread = {e["type"]: e for e in received["permission:T-9"]}
    assert on_thread["permission.escalation"]["check_id"] == "grant"
    assert on_thread["permission.check"]["escalation_detected"] is True


def test_detection_costs_the_same_queries_for_a_batch_of_5_or_50_grants() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit import escalation

    def queries_for(count: int, offset: int) -> int:
        checks = [
            check(offset + i, id=f"g-{offset}-{i}", thread_id="T-1", user_id="alice", resource="git/log")
            for i in range(count)
        ]
        store(started("T-1"), *checks, mcp_id="agents")
        rows = [
            {**c, "timestamp": PermissionEvent.objects.get(id=c["id"]).timestamp, "inheritance_chain": []}
            for c in checks
        ]
        with CaptureQueriesContext(connection) as captured:
            escalation.detect(rows)
        return len(captured)

    assert queries_for(5, 0) == queries_for(50, 100)


# -- the banner on /permissions --------------------------------------------------------


def test_the_permissions_banner_names_the_rule_that_fired_and_its_detail(client: Any) -> None:
    from tests.conftest import ago

    store(
        *[check(id=f"d{i}", timestamp=ago(300 - i), resource="db/drop", granted=False) for i in range(3)],
        check(id="grant", timestamp=ago(200), resource="db/drop"),
    )
    page = client.get("/permissions")
    assert page.status_code == 200
    banner = page.content.decode().split('id="escalations"', 1)[1].split("</section>", 1)[0]
    assert "1 escalation detected" in banner
    assert "grant_after_denials" in banner
    assert "alice was denied db/drop 3 times in the 600 s before" in banner
