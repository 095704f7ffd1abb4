"""Escalation detection judges a check by its own team's history: another team's denials,
threads and baseline never make (or tell about) an escalation.

Teams name their subjects freely ("alice" in alpha is not "alice" in beta), so a rule
that read every team's checks would let beta learn, from its own checks' escalations,
what alpha's subjects and threads were denied.
"""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import PermissionEvent
from tests.conftest import event
from tests.teams import push

pytestmark = pytest.mark.django_db

DAY = 86400
QUIET = (False, "info", [])


def check(seconds: float, thread_id: str, **fields: Any) -> dict[str, Any]:
    return event("permission.check", seconds, thread_id=thread_id, user_id="alice", **fields)


def flagged(event_id: str) -> tuple[bool, str, list[str]]:
    row = PermissionEvent.objects.get(id=event_id)
    return row.escalation_detected, row.severity, [e["rule"] for e in row.escalations]


def test_another_teams_denials_of_a_same_named_subject_do_not_count() -> None:
    push("alpha", *[check(i * 60, "T-a", resource="db/drop", granted=False) for i in range(3)])
    push("beta", check(200, "T-b", id="beta-grant", resource="db/drop"))
    assert flagged("beta-grant") == QUIET
    push("alpha", check(201, "T-a", id="alpha-grant", resource="db/drop"))
    assert flagged("alpha-grant") == (True, "critical", ["grant_after_denials"])


def test_a_chain_naming_another_teams_thread_reads_nothing_of_it() -> None:
    push(
        "alpha", event("thread.started", thread_id="T-a"), check(1, "T-a", resource="git/push", granted=False)
    )
    push(
        "beta",
        event("thread.started", thread_id="T-b"),
        check(2, "T-b", id="beta-child", resource="git/push", inheritance_chain=["T-a", "T-b"]),
    )
    assert flagged("beta-child") == QUIET
    assert "T-a" not in str(PermissionEvent.objects.get(id="beta-child").escalations)


def test_another_teams_history_is_no_baseline_for_a_same_named_subject() -> None:
    push("alpha", check(0, "T-a", resource="git/log"))
    push("beta", check(8 * DAY, "T-b", id="beta-first", resource="payments/refund"))
    assert flagged("beta-first") == QUIET  # beta's alice is new: still learning
    push("beta", check(0, "T-b", resource="git/log"), check(9 * DAY, "T-b", id="beta-new", resource="db/x"))
    assert flagged("beta-new") == (True, "critical", ["new_resource_class"])
