"""Escalation detection, run on every permission check as it is stored.

Both the gateway's own checks (audit/policy.py, recorded through the ingest pipeline)
and the `permission.check` events agents push go through `detect()`, called once by the
pipeline after a batch's checks are inserted, so the batch itself counts as history.
Only grants can escalate. The rules (thresholds in `policy.escalation` of
mission_control.yml):

- `child_exceeds_parent`: a thread is granted a resource (the same `server/tool`) that
  one of its ancestors was denied or does not hold. What that means:
  - an ancestor *does not hold* the resource when the check's `inheritance_chain`
    carries that ancestor's verdict (objects with a boolean `granted`, as the gateway
    records every routed call, audit/policy.py: the policy evaluated for the ancestor's
    own subject) and the verdict is `false`. A verdict of `true` settles it: quiet, the
    ancestor's history is not read.
  - an ancestor without a verdict in the chain (an agent's pushed check: a chain of
    thread ids, or none at all, and then the ancestor is the thread's recorded parent)
    *was denied* the resource when its latest recorded check of that resource, at or
    before this one, is a denial (no grant at or after it).
  An ancestor that never checked the resource itself is not evidence of anything: agents
  hand their sub-agents work they never do themselves (the demo's parent never looks up
  a time its children look up), so "never granted" raises nothing.
- `grant_after_denials`: the subject (`user_id`) was denied the same resource at least
  `denials` times (default 3) in the `window` (default 10 minutes) before this grant.
- `new_resource_class`: the subject reaches a resource class (the part of the resource
  before the first `/`: the server, for routed calls) it was never granted before. It
  only fires once the subject has a history at least `learning_period` long (default 7
  days) before this check: until then whatever a subject uses is its baseline, so a new
  install, or a new agent, does not raise an alert per first call.

Every rule reads the history of the check's own team only (the team of its thread; no
team: the checks of threads of no team): teams name their subjects and threads freely,
and another team's denials must neither raise an alert here nor be told by one.

A firing check gets `escalation_detected`, severity `critical`, and `escalations`
(`[{"rule", "detail"}]`); a `permission.escalation` alert goes to `global` and
`permission:{thread_id}`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Q, QuerySet

from audit.models import PermissionEvent
from threads.models import Thread

CHILD_EXCEEDS_PARENT = "child_exceeds_parent"
GRANT_AFTER_DENIALS = "grant_after_denials"
NEW_RESOURCE_CLASS = "new_resource_class"


def resource_class(resource: str) -> str:
    return resource.split("/", 1)[0]


def detect(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flag the escalations among `checks` (stored already); the alert events to publish.

    A firing check's dict and row are updated in place (escalation_detected, severity,
    escalations). A few indexed queries per granted check; denials cost nothing.
    """
    granted = [c for c in checks if c["granted"]]
    if not granted:
        return []
    config = settings.MC.policy.escalation
    threads = Thread.objects.filter(id__in={c["thread_id"] for c in granted}).order_by()
    parents: dict[str, str | None] = {}
    teams: dict[str, int | None] = {}
    for thread_id, parent_id, team_id in threads.values_list("id", "parent_id", "team_id"):
        parents[thread_id], teams[thread_id] = parent_id, team_id
    first_seen: dict[tuple[int | None, str], Any] = {}
    used_classes: set[tuple[int | None, str, str]] = set()
    denied = _pairs_with_denials(granted, config.window)
    alerts: list[dict[str, Any]] = []
    for check in sorted(granted, key=lambda c: c["timestamp"]):
        team = teams.get(check["thread_id"])
        fired = [
            *_child_exceeds_parent(check, team, parents.get(check["thread_id"])),
            *(
                _grant_after_denials(check, team, config.denials, config.window)
                if (check["user_id"], check["resource"]) in denied
                else []
            ),
            *_new_resource_class(check, team, config.learning_period, first_seen, used_classes),
        ]
        if not fired:
            continue
        check["escalation_detected"] = True
        check["severity"] = PermissionEvent.Severity.CRITICAL
        check["escalations"] = fired
        PermissionEvent.objects.filter(id=check["id"]).update(
            escalation_detected=True, severity=PermissionEvent.Severity.CRITICAL, escalations=fired
        )
        alerts.append(
            {
                "type": "permission.escalation",
                "id": f"{check['id']}:escalation",
                "check_id": check["id"],
                "timestamp": check["timestamp"].isoformat(),
                "thread_id": check["thread_id"],
                "user_id": check["user_id"],
                "resource": check["resource"],
                "action": check["action"],
                "severity": PermissionEvent.Severity.CRITICAL,
                "rules": fired,
            }
        )
    return alerts


def _of_team(team: int | None) -> Any:
    """The checks of `team`'s threads (None: of threads of no team)."""
    if team is None:
        return PermissionEvent.objects.filter(thread__team__isnull=True)
    return PermissionEvent.objects.filter(thread__team_id=team)


def _history(check: dict[str, Any], team: int | None) -> Any:
    """Checks of `team` recorded before (or with) this one, itself excluded."""
    return _of_team(team).filter(timestamp__lte=check["timestamp"]).exclude(id=check["id"])


def _child_exceeds_parent(
    check: dict[str, Any], team: int | None, parent_id: str | None
) -> list[dict[str, str]]:
    """The ancestor that does not hold what this check granted, if any (see the module docstring)."""
    resource, own = check["resource"], check["thread_id"]
    named: list[str] = []  # the ancestors the chain names, root first
    verdicts: dict[str, bool] = {}
    for link in check["inheritance_chain"]:
        thread_id = link.get("thread_id") if isinstance(link, dict) else link
        if not isinstance(thread_id, str) or thread_id == own:
            continue
        named.append(thread_id)
        if isinstance(link, dict) and isinstance(link.get("granted"), bool):
            verdicts[thread_id] = link["granted"]
    for thread_id in named:
        if verdicts.get(thread_id) is False:
            return [
                {
                    "rule": CHILD_EXCEEDS_PARENT,
                    "detail": f"ancestor thread {thread_id} does not hold {resource}: "
                    "its own verdict in the chain is a denial",
                }
            ]
    unjudged = [t for t in named if t not in verdicts] if named else [parent_id] if parent_id else []
    if not unjudged:
        return []
    # An ancestor's standing is its latest check of the resource: a denial with no grant
    # at or after it. One query, however many ancestors.
    later_grant = _history(check, team).filter(
        thread_id=OuterRef("thread_id"), resource=resource, granted=True, timestamp__gte=OuterRef("timestamp")
    )
    denied = (
        _history(check, team)
        .filter(thread_id__in=unjudged, resource=resource, granted=False)
        .exclude(Exists(later_grant))
        .order_by()
        .values_list("thread_id", flat=True)
        .first()
    )
    if denied is None:
        return []
    kin = "parent" if denied == (named[-1] if named else parent_id) else "ancestor"
    return [
        {
            "rule": CHILD_EXCEEDS_PARENT,
            "detail": f"{kin} thread {denied} was denied {resource} (its latest check of it)",
        }
    ]


def _pairs_with_denials(granted: list[dict[str, Any]], window: int) -> set[tuple[str, str]]:
    """(subject, resource) pairs of the batch with any denial in their window: one query for
    the batch, so only those pairs pay the exact count (most grants follow no denial)."""
    return set(denied_pairs(granted, window))


def denied_pairs(granted: list[dict[str, Any]], window: int) -> QuerySet[Any, tuple[str, str]]:
    """The query behind `_pairs_with_denials`: one row per pair, however many denials."""
    subjects = {c["user_id"] for c in granted if c["user_id"]}
    if not subjects:
        return PermissionEvent.objects.none().values_list("user_id", "resource")
    earliest = min(c["timestamp"] for c in granted) - timedelta(seconds=window)
    latest = max(c["timestamp"] for c in granted)
    rows = PermissionEvent.objects.filter(
        granted=False,
        user_id__in=subjects,
        resource__in={c["resource"] for c in granted},
        timestamp__gte=earliest,
        timestamp__lte=latest,
    )
    # No ordering: the model's (by timestamp) would join the DISTINCT, a row per denial.
    return rows.order_by().values_list("user_id", "resource").distinct()


def _grant_after_denials(
    check: dict[str, Any], team: int | None, threshold: int, window: int
) -> list[dict[str, str]]:
    subject = check["user_id"]
    if not subject:
        return []
    since = check["timestamp"] - timedelta(seconds=window)
    denials = (
        _history(check, team)
        .filter(user_id=subject, resource=check["resource"], granted=False, timestamp__gte=since)
        .count()
    )
    if denials < threshold:
        return []
    return [
        {
            "rule": GRANT_AFTER_DENIALS,
            "detail": f"{subject} was denied {check['resource']} {denials} times in the {window} s before",
        }
    ]


def _new_resource_class(
    check: dict[str, Any],
    team: int | None,
    learning_period: int,
    first_seen: dict[tuple[int | None, str], Any],
    used_classes: set[tuple[int | None, str, str]],
) -> list[dict[str, str]]:
    subject = check["user_id"]
    if not subject:
        return []
    if (team, subject) not in first_seen:
        first_seen[team, subject] = (
            _of_team(team).filter(user_id=subject).aggregate(first=Min("timestamp"))["first"]
        )
    first = first_seen[team, subject]
    if first is None or check["timestamp"] - first < timedelta(seconds=learning_period):
        return []  # still learning this subject's baseline
    cls = resource_class(check["resource"])
    if (team, subject, cls) in used_classes:
        return []  # used before, or granted by an earlier check of this batch
    used_classes.add((team, subject, cls))
    used = (
        _history(check, team)
        .filter(user_id=subject, granted=True)
        .filter(Q(resource=cls) | Q(resource__startswith=f"{cls}/"))
        .exists()
    )
    if used:
        return []
    return [{"rule": NEW_RESOURCE_CLASS, "detail": f"{subject} never used {cls} before"}]
