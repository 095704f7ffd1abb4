"""Policies for routed calls: who a call is from, which rules apply, and the verdict.

Every call routed through the gateway (`/mcp`, `manage.py mcp_proxy`,
`POST /api/mcps/{id}/tools/{tool}/call`) is decided here before it is forwarded:

- the **subject** is the call's principal: API token id, username, team slugs (all
  optional; the anonymous subject has none), from the authenticated caller
  (`missioncontrol.authentication.Principal.subject()`).
- the **action** comes from the tool's MCP annotations in the gateway's catalog:
  `readOnlyHint: true` is read, `destructiveHint: true` is write, anything else is
  execute. Annotations are hints the server gives about itself; a rule on `any` action
  does not depend on them.
- the **rules** (`PolicyRule`) are tried higher priority first, deny before allow at the
  same priority; the first whose subject, server glob, tool glob and action match
  decides. No match: `policy.default` in mission_control.yml (allow unless set).
  `rules_checked` lists the rules considered: those whose subject part names the
  caller, in order, up to the one that decided, each with `matched`.
- **declared permissions**: a thread may declare what its calls may do (a Kiwi
  directive's `<permissions>`, kiwi/runs.py): a `Declared` allow-list of rules of the
  same shape. A call in such a thread is granted only if the policy grants it and one
  declared rule matches it; every declared rule tried is in `rules_checked`, marked with
  its `source`, so the permission event says which directive permission decided.
- **inheritance**: a call in a child thread is allowed only if it is allowed for the
  child's subject and for the subject of every ancestor thread (root first). A child
  never holds more than its parent.

Rules are compiled once per process and kept until they change: a save or delete bumps
a local generation at once and a version stamp in the shared cache (Redis, or a file
cache on the embedded default), which other processes compare at most once every
`REFRESH_SECONDS`. Deciding a call is then a few glob matches in memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import close_old_connections
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from audit.models import PermissionEvent, PolicyRule

STAMP_KEY = "mc:policy:version"
REFRESH_SECONDS = 1.0
READ, WRITE, EXECUTE = "read", "write", "execute"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a routed call is from. Every part is optional; none at all is anonymous."""

    token: str | None = None
    user: str | None = None
    teams: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The name checks are recorded under (PermissionEvent.user_id)."""
        if self.user:
            return self.user
        if self.token:
            return f"token:{self.token}"
        return "anonymous"

    def as_dict(self) -> dict[str, Any]:
        return {"token": self.token, "user": self.user, "teams": list(self.teams)}

    @classmethod
    def from_dict(cls, data: Any) -> Subject:
        if not isinstance(data, dict):
            return ANONYMOUS
        teams = data.get("teams") or ()
        return cls(
            token=str(data["token"]) if data.get("token") is not None else None,
            user=str(data["user"]) if data.get("user") else None,
            teams=tuple(str(t) for t in teams) if isinstance(teams, list | tuple) else (),
        )

    @classmethod
    def of_thread(cls, execution_context: Any) -> Subject:
        """A recorded thread's subject: `execution_context.subject`, else its `principal` as user."""
        if not isinstance(execution_context, dict):
            return ANONYMOUS
        if isinstance(execution_context.get("subject"), dict):
            return cls.from_dict(execution_context["subject"])
        principal = execution_context.get("principal")
        if isinstance(principal, str) and principal and principal != "anonymous":
            return cls(user=principal)
        return ANONYMOUS


ANONYMOUS = Subject()


def action_of(annotations: Any) -> str:
    """read, write or execute, from a tool's MCP annotations (see the module docstring)."""
    if isinstance(annotations, dict):
        if annotations.get("readOnlyHint") is True:
            return READ
        if annotations.get("destructiveHint") is True:
            return WRITE
    return EXECUTE


# -- rules --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """A PolicyRule as evaluated: plain values, no ORM."""

    id: int | str  # a PolicyRule's pk; a declared rule's "<source>#<n>"
    description: str
    effect: str
    priority: int
    subject_kind: str
    subject_value: str
    server: str
    tool: str
    action: str

    @classmethod
    def of(cls, row: PolicyRule) -> Rule:
        return cls(
            id=row.pk,
            description=row.description or str(row),
            effect=str(row.effect),
            priority=row.priority,
            subject_kind=str(row.subject_kind),
            subject_value=row.subject_value,
            server=row.server,
            tool=row.tool,
            action=str(row.action),
        )

    def applies_to(self, subject: Subject) -> bool:
        kind, value = self.subject_kind, self.subject_value
        if kind == "any":
            return True
        if kind == "user":
            return subject.user == value
        if kind == "token":
            return subject.token == value
        return value in subject.teams

    def matches(self, server: str, tool: str, action: str) -> bool:
        """Resource and action (the subject is matched first, by `RuleSet.for_subject`)."""
        return (
            (self.action == "any" or self.action == action)
            and (self.server == "*" or fnmatchcase(server, self.server))
            and (self.tool == "*" or fnmatchcase(tool, self.tool))
        )

    def checked(self, matched: bool) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "effect": self.effect, "matched": matched}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One subject's answer for one resource and action."""

    granted: bool
    rule: Rule | None  # None: no rule matched, the default decided
    checked: tuple[dict[str, Any], ...]

    @property
    def because(self) -> str:
        if self.rule is None:
            return f"no rule matched: default {'allow' if self.granted else 'deny'}"
        return f"rule #{self.rule.id} ({self.rule.description}): {self.rule.effect}"


class RuleSet:
    """Enabled rules in evaluation order, and the default when none matches.

    The rules a subject is concerned by, and each verdict, are remembered: an agent
    calls the same few tools over and over, so most decisions are one dict lookup. A
    change of rules builds a new RuleSet, so nothing remembered outlives its rules.
    """

    MEMO_SIZE = 10_000

    def __init__(self, rules: list[Rule], default_allow: bool) -> None:
        self.rules = rules
        self.default_allow = default_allow
        self._subjects: dict[Subject, list[Rule]] = {}
        self._verdicts: dict[tuple[Subject, str, str, str], Verdict] = {}

    def for_subject(self, subject: Subject) -> list[Rule]:
        """The rules whose subject part names `subject`: the ones its checks consider."""
        found = self._subjects.get(subject)
        if found is None:
            if len(self._subjects) >= self.MEMO_SIZE:
                self._subjects.clear()
            found = self._subjects[subject] = [r for r in self.rules if r.applies_to(subject)]
        return found

    def evaluate(self, subject: Subject, server: str, tool: str, action: str) -> Verdict:
        key = (subject, server, tool, action)
        verdict = self._verdicts.get(key)
        if verdict is not None:
            return verdict
        checked: list[dict[str, Any]] = []
        verdict = Verdict(self.default_allow, None, ())
        for rule in self.for_subject(subject):
            matched = rule.matches(server, tool, action)
            checked.append(rule.checked(matched))
            if matched:
                verdict = Verdict(rule.effect == "allow", rule, ())
                break
        verdict = Verdict(verdict.granted, verdict.rule, tuple(checked))
        if len(self._verdicts) >= self.MEMO_SIZE:
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict


@dataclass(frozen=True, slots=True)
class Declared:
    """The permissions a thread declares for itself: an allow-list its calls must match."""

    source: str  # what declared them, as the checks name it: "kiwi directive deploy_app 1.0.0"
    rules: tuple[Rule, ...]

    def evaluate(self, server: str, tool: str, action: str) -> Verdict:
        checked: list[dict[str, Any]] = []
        for rule in self.rules:
            matched = rule.matches(server, tool, action)
            checked.append({**rule.checked(matched), "source": self.source})
            if matched:
                return Verdict(True, rule, tuple(checked))
        return Verdict(False, None, tuple(checked))


# -- decision with inheritance ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    """One thread of a chain and the subject its calls are made as."""

    thread_id: str
    subject: Subject


@dataclass(frozen=True)
class Decision:
    """The verdict on one routed call, with everything the PermissionEvent records."""

    subject: Subject
    resource: str
    action: str
    granted: bool
    reason: str
    rules_checked: list[dict[str, Any]]
    inheritance_chain: list[dict[str, Any]]
    rule: Rule | None = None  # the rule that decided (denied: the denying rule)
    severity: str = field(default=PermissionEvent.Severity.INFO)

    def denial_text(self) -> str:
        """What the agent reads when the call is refused."""
        return f"Denied by Mission Control policy: {self.reason}. The call was not forwarded to the server."


def decide(
    rules: RuleSet,
    chain: list[Link],
    server: str,
    tool: str,
    action: str,
    declared: Declared | None = None,
) -> Decision:
    """The verdict for the last link of `chain` (root first), which inherits from the rest.

    Each link is evaluated for its own subject; the call is granted only if every link
    is, and, when its thread `declared` permissions, one of them matches. The deciding
    rule of a denial is the first denying link's, root first, else the declared list's
    (none: no declared permission matched).
    """
    resource = f"{server}/{tool}"
    links: list[dict[str, Any]] = []
    verdicts: list[Verdict] = []
    for link in chain:
        verdict = rules.evaluate(link.subject, server, tool, action)
        verdicts.append(verdict)
        links.append(
            {
                "thread_id": link.thread_id,
                "subject": link.subject.label,
                "granted": verdict.granted,
                "rule": verdict.rule.id if verdict.rule is not None else None,
            }
        )
    own = verdicts[-1]
    denying = next(((i, v) for i, v in enumerate(verdicts) if not v.granted), None)
    subject = chain[-1].subject
    if denying is None:
        granted, rule, reason = True, own.rule, f"{subject.label} may {action} {resource}: {own.because}"
    else:
        index, verdict = denying
        granted, rule = False, verdict.rule
        if index == len(chain) - 1:
            reason = f"{subject.label} may not {action} {resource}: {verdict.because}"
        else:
            ancestor = chain[index]
            reason = (
                f"inherited from thread {ancestor.thread_id} ({ancestor.subject.label}), which may not "
                f"{action} {resource}: {verdict.because}"
            )
    checked = list(own.checked)
    if declared is not None:
        allowed = declared.evaluate(server, tool, action)
        checked += allowed.checked
        if granted and allowed.rule is None:
            granted, rule = False, None
            reason = (
                f"{subject.label} may not {action} {resource}: "
                f"{declared.source} declares no permission for it"
            )
        elif granted and allowed.rule is not None:
            reason += f"; declared by {declared.source}: {allowed.rule.description}"
    return Decision(
        subject=subject,
        resource=resource,
        action=action,
        granted=granted,
        reason=reason,
        rules_checked=checked,
        inheritance_chain=links,
        rule=rule,
        severity=PermissionEvent.default_severity(granted, False),
    )


# -- the per-process cache ----------------------------------------------------------


class PolicyCache:
    """Compiled rules for this process, reloaded when they change anywhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: RuleSet | None = None
        self._generation = 0  # bumped here on a local change
        self._loaded_generation = -1
        self._stamp: Any = None  # the shared stamp the rules were loaded under
        self._checked_at = 0.0

    def fresh(self) -> RuleSet | None:
        """The rules if they are known current without any I/O, else None."""
        if (
            self._rules is not None
            and self._loaded_generation == self._generation
            and time.monotonic() - self._checked_at < REFRESH_SECONDS
        ):
            return self._rules
        return None

    def rules(self) -> RuleSet:
        """The current rules (sync; may read the shared stamp and the database)."""
        ready = self.fresh()
        if ready is not None:
            return ready
        with self._lock:
            generation = self._generation
            stamp = _shared().get(STAMP_KEY)
            self._checked_at = time.monotonic()
            if self._rules is None or generation != self._loaded_generation or stamp != self._stamp:
                rows = PolicyRule.objects.in_evaluation_order()
                self._rules = RuleSet([Rule.of(r) for r in rows], settings.MC.policy.default == "allow")
                self._loaded_generation, self._stamp = generation, stamp
            return self._rules

    async def arules(self) -> RuleSet:
        """`rules()` for the event loop: no thread hop while the rules are known current.

        On the embedded default the stamp is a small local file: it is read right here,
        quicker than a hop to a thread (which, on a busy process, waits for one to be
        free and then for the GIL). Only a reload, or a stamp across the network
        (Redis), takes the hop.
        """
        ready = self.fresh()
        if ready is not None:
            return ready
        shared = _shared()
        if isinstance(shared, LOCAL_CACHES):
            ready = self._confirm(shared.get(STAMP_KEY))
            if ready is not None:
                return ready
        return await sync_to_async(_with_fresh_connection(self.rules), thread_sensitive=False)()

    def _confirm(self, stamp: Any) -> RuleSet | None:
        """The rules, checked as of now, if `stamp` says they are current; None if they need
        a reload (or a reload is under way in another thread)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._rules is None or self._loaded_generation != self._generation or stamp != self._stamp:
                return None
            self._checked_at = time.monotonic()
            return self._rules
        finally:
            self._lock.release()

    def invalidate(self) -> None:
        """The rules changed: reload here on next use, and tell every other process."""
        self._generation += 1
        _shared().set(STAMP_KEY, uuid.uuid4().hex, timeout=None)


def _shared() -> Any:
    return caches["shared"]


# Shared caches read without any network: a file (the embedded default), or memory (tests).
LOCAL_CACHES = (FileBasedCache, LocMemCache)


def _with_fresh_connection(fn: Any) -> Any:
    def run() -> Any:
        close_old_connections()
        try:
            return fn()
        finally:
            close_old_connections()

    return run


policies = PolicyCache()


@receiver(post_save, sender=PolicyRule)
@receiver(post_delete, sender=PolicyRule)
def _rules_changed(**kwargs: Any) -> None:
    policies.invalidate()
