"""Apprise: one URL per target (Slack, Discord, Teams, email, ntfy, PagerDuty, webhooks...).

Each target is sent to on its own, so a delivery knows which of its targets took the
message and a retry goes only to the ones that did not. Target URLs carry secrets
(tokens, passwords): they leave this module only as a hash (which targets are done)
or masked (`mask`: the scheme alone), never whole, and errors name a target by its
position and service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import apprise

# Apprise's own deadline for one target, connection and answer included.
TIMEOUT_SECONDS = 30
MAX_TARGETS = 20
MAX_TARGET_LENGTH = 2000
MASK = "***"

NOTIFY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warn": apprise.NotifyType.WARNING,
    "critical": apprise.NotifyType.FAILURE,
    "resolved": apprise.NotifyType.SUCCESS,
}


def target_hash(url: str) -> str:
    """What a delivery remembers of a target that took its message."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def mask(url: str) -> str:
    """A target as everyone but admins sees it: which kind of service, no host, no token."""
    scheme, sep, _rest = url.partition("://")
    return f"{scheme}://{MASK}" if sep else MASK


def service_name(url: str) -> str:
    plugin = apprise.Apprise.instantiate(url)
    return str(plugin.service_name) if plugin is not None else mask(url)


def target_problem(url: object) -> str | None:
    """Why `url` cannot be a target, or None."""
    if not isinstance(url, str) or not url.strip():
        return "expected an Apprise URL, e.g. json://host/path or mailto://user:pass@host"
    if len(url) > MAX_TARGET_LENGTH:
        return f"longer than {MAX_TARGET_LENGTH} characters"
    if apprise.Apprise.instantiate(url.strip()) is None:
        return f"Apprise does not recognise {mask(url)} (see the Apprise wiki for each service's URL)"
    return None


@dataclass
class Outcome:
    """How one attempt went: which targets took the message, and why the others did not."""

    total: int
    delivered: list[str] = field(default_factory=list)  # hashes of the targets that took it
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_text(self) -> str:
        return "; ".join(self.errors)


def send(targets: list[str], title: str, body: str, notify_type: str, skip: set[str]) -> Outcome:
    """Send to every target whose hash is not in `skip`; blocking (a worker's thread)."""
    pending = [(i, url) for i, url in enumerate(targets, 1) if target_hash(url) not in skip]
    outcome = Outcome(total=len(pending))
    for position, url in pending:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            outcome.errors.append(f"target {position}: not an Apprise URL any more")
            continue
        notifier = apprise.Apprise()
        notifier.add(plugin)
        # The result carries this call's own log lines: no process-wide log capture,
        # so deliveries sent at once in several threads keep their reasons apart.
        with notifier.notify(
            body=body, title=title, notify_type=NOTIFY_TYPES[notify_type], timeout=TIMEOUT_SECONDS
        ) as result:
            if result:
                outcome.delivered.append(target_hash(url))
                continue
            reason = _reason(result) or f"Apprise answered {result.status.name.lower()}"
        outcome.errors.append(f"target {position} ({plugin.service_name}): {reason}")
    return outcome


def _reason(result: apprise.AppriseResult) -> str:
    """The warnings and errors Apprise logged for the call, on one line."""
    lines: list[str] = []
    for entry in result.logs():
        text = str(entry.message).strip()
        if entry.level in ("WARNING", "ERROR", "CRITICAL") and text and text not in lines:
            lines.append(text)
    return " ".join(lines)[:1000]
