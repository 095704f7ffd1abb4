"""Secrets masked before anything ingested is stored: tokens, API keys, passwords.

Every ingest path (POST /api/ingest/events, the gateway's server logs, the calls
recorded on /mcp and mcp_proxy) stores through `pipeline.ingest`, which passes each
validated event through `redact_event`. Texts are searched with one combined regular
expression; JSON values are walked, and a value under a key such as `password` or
`authorization` is masked whole.

Written for the ingest hot path: the patterns are compiled once into one alternation;
a string that holds none of the patterns' trigger fragments (checked with plain
substring tests, far cheaper than the regex) is returned untouched; a JSON value is
copied only where something in it changed.

A pattern's first group, if it has one, is kept and the rest of the match replaced:
`(Bearer\\s+)\\S+` keeps "Bearer ". Configured in `mission_control.yml`:

    redaction:
      enabled: true
      replacement: "***"
      patterns: ["(internal-)[0-9a-f]{32}"]   # added to the defaults below
      keys: ["x-internal-auth"]              # added to the sensitive JSON key names
      pii: [email, card, us_ssn]             # personal data too (or true for all); off by default

`MC_REDACT_PII` (`all`, `off`, or `email,card,us_ssn`) overrides `pii`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from missioncontrol.config import RedactionConfig

# Token characters of a bearer/basic credential and of generic secret values.
_TOKEN = r"[A-Za-z0-9\-._~+/]"
_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"

# (name, pattern, trigger fragments): a string none of whose lowercase form contains
# any trigger cannot match the pattern.
DEFAULT_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "private key block",
        r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        ("private key-----",),
    ),
    (
        "authorization header",
        r"((?i:authorization|proxy-authorization)[\"']?\s*[:=]\s*[\"']?(?:(?i:bearer|basic|token)\s+)?)"
        r"[^\s\"',;]+",
        ("authorization",),
    ),
    (
        "bearer token",
        # A digit or punctuation in the token: "bearer of bad news" is prose.
        rf"((?i:bearer)\s+)(?={_TOKEN}*[0-9\-._~+/]){_TOKEN}{{8,}}=*",
        ("bearer",),
    ),
    ("anthropic key", rf"{_NOT_ALNUM_BEFORE}(sk-ant-)[A-Za-z0-9_\-]{{16,}}", ("sk-ant-",)),
    ("openai key", rf"{_NOT_ALNUM_BEFORE}(sk-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{{16,}}", ("sk-",)),
    (
        "github token",
        rf"{_NOT_ALNUM_BEFORE}(gh[pousr]_)[A-Za-z0-9]{{30,}}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    ("github fine-grained token", rf"{_NOT_ALNUM_BEFORE}(github_pat_)[A-Za-z0-9_]{{20,}}", ("github_pat_",)),
    ("aws access key id", r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])", ("akia", "asia")),
    ("slack token", rf"{_NOT_ALNUM_BEFORE}(xox[abposre]-)[A-Za-z0-9\-]{{10,}}", ("xox",)),
    ("jwt", r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]+", ("eyj",)),
    (
        "password in url",
        r"((?i:[a-z][a-z0-9+.\-]*)://[^/\s:@\"']+:)[^/\s@\"']+(?=@)",
        ("://",),
    ),
    (
        "secret assignment",
        # api_key=..., "password": "...", token: ...; the name and separator are kept.
        rf"({_NOT_ALNUM_BEFORE}(?i:api[_\-]?key|access[_\-]?key|secret[_\-]?key|secret|client[_\-]?secret"
        r"|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|token|passwd|password|pwd|private[_\-]?key)"
        r"[\"']?\s*[:=]\s*[\"']?)(?![\"'\s*])[^\s\"'&,;]{3,}",
        ("key", "secret", "token", "pass", "pwd"),
    ),
)

# Personal data, masked when `redaction.pii` lists its kind (off by default). The card
# pattern is only a candidate: a match is masked if its digits pass the Luhn check, so
# order numbers and timestamps stay. Triggers are the characters every match holds.
_DIGITS = tuple("0123456789")
PII_PATTERNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "email": (
        r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}",
        ("@",),
    ),
    "card": (r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", _DIGITS),
    # Area 001-899 but 666, group 01-99, serial 0001-9999, dashed (a bare nine digits is too often an id).
    "us_ssn": (r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", _DIGITS),
}


def luhn(text: str) -> bool:
    """Whether the digits of `text` (13 to 19 of them) pass the Luhn checksum of card numbers."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# JSON keys whose string values are masked whole: a key ending with one of these, case
# and separators aside (`db_password`, `X-Api-Key`, `accessToken`; not `max_tokens`).
DEFAULT_KEYS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
)
_SEPARATORS = str.maketrans("", "", "_-. ")
_CLEAN_LENGTH = 64
_CLEAN_KEPT = 4096


def _fold(key: str) -> str:
    return key.lower().translate(_SEPARATORS)


@dataclass(frozen=True)
class _Rule:
    group: int  # the index of the pattern's outer group in the combined regex
    keep: int | None  # the index of the group kept (the pattern's first), if any
    check: Callable[[str], bool] | None = None  # a match is masked only if this holds


class _Matcher:
    """One combined regex over some patterns, and the trigger fragments that call for it."""

    def __init__(
        self,
        patterns: list[tuple[str, tuple[str, ...] | None]],
        replacement: str,
        checks: dict[str, Callable[[str], bool]],
    ) -> None:
        self.replacement = replacement
        parts: list[str] = []
        self._rules: dict[int, _Rule] = {}
        triggers: set[str] = set()
        self.always = False  # a configured pattern has no known triggers
        group = 1
        for pattern, fragments in patterns:
            inner = re.compile(pattern).groups
            self._rules[group] = _Rule(group, group + 1 if inner else None, checks.get(pattern))
            parts.append(f"({pattern})")
            group += inner + 1
            if fragments is None:
                self.always = True
            else:
                triggers.update(fragments)
        self.regex = re.compile("|".join(parts))
        # A trigger that holds another ("sk-ant-" holds "sk-") adds nothing to the test.
        self.triggers = tuple(sorted(t for t in triggers if not any(o != t and o in t for o in triggers)))

    def wanted(self, lowered: str) -> bool:
        return self.always or any(fragment in lowered for fragment in self.triggers)

    def replace(self, match: re.Match[str]) -> str:
        rule = self._rules[match.lastindex or 0]
        if rule.check is not None and not rule.check(match.group(0)):
            return match.group(0)
        if rule.keep is None:
            return self.replacement
        return (match.group(rule.keep) or "") + self.replacement


class Redactor:
    """Masks secrets in texts and JSON values with precompiled regexes.

    `patterns` (the secrets) form one regex; each group of `extra` patterns (personal
    data) another, run only on texts holding one of its own triggers: a digit alone
    must not send every text through the secrets' regex.
    """

    def __init__(
        self,
        patterns: Iterable[tuple[str, tuple[str, ...] | None]],
        keys: Iterable[str],
        replacement: str = "***",
        checks: dict[str, Callable[[str], bool]] | None = None,
        extra: Iterable[Iterable[tuple[str, tuple[str, ...] | None]]] = (),
    ) -> None:
        self.replacement = replacement
        groups = [list(patterns), *(list(group) for group in extra)]
        self._matchers = [_Matcher(group, replacement, checks or {}) for group in groups if group]
        self._key_suffixes = tuple({_fold(k) for k in keys if _fold(k)})
        self._key_cache: dict[str, bool] = {}
        # Short texts found clean, which recur (ids, names, kinds): a set lookup instead
        # of the trigger scan.
        self._clean: set[str] = set()

    def text(self, value: str) -> str:
        """`value` with every secret masked (the same object when there is none)."""
        if not self._matchers or len(value) < 8 or value in self._clean:
            return value
        lowered = value.lower()
        wanted = [matcher for matcher in self._matchers if matcher.wanted(lowered)]
        if not wanted:
            if len(value) <= _CLEAN_LENGTH:
                if len(self._clean) >= _CLEAN_KEPT:
                    self._clean.clear()
                self._clean.add(value)
            return value
        for matcher in wanted:
            value = matcher.regex.sub(matcher.replace, value)
        return value

    def sensitive_key(self, key: str) -> bool:
        """Whether `key` names a secret: it ends with a sensitive name, case and separators aside."""
        cached = self._key_cache.get(key)
        if cached is None:
            cached = bool(self._key_suffixes) and _fold(key).endswith(self._key_suffixes)
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = cached
        return cached

    def value(self, value: Any) -> Any:
        """A JSON value with secrets masked; containers are copied only where changed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return self._dict(value)
        if isinstance(value, list):
            return self._list(value)
        return value

    # The walk runs for every stored field of every ingested event: one isinstance per
    # item, strings shorter than a secret skipped, keys judged from a cache.
    def _dict(self, value: dict[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            if isinstance(item, str):
                if item and isinstance(key, str) and self.sensitive_key(key):
                    new: Any = self.replacement
                elif len(item) < 8:
                    continue  # too short to hold a secret (see text)
                else:
                    new = self.text(item)
            elif isinstance(item, dict):
                new = self._dict(item)
            elif isinstance(item, list):
                new = self._list(item)
            else:
                continue
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _list(self, value: list[Any]) -> list[Any]:
        items: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, str):
                new: Any = self.text(item)
            elif isinstance(item, dict):
                new = self._dict(item)
            elif isinstance(item, list):
                new = self._list(item)
            else:
                continue
            if new is not item:
                if items is None:
                    items = list(value)
                items[index] = new
        return value if items is None else items


# The stored fields of each event type that may carry secrets.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "thread.started": ("user_input", "execution_context"),
    "thread.step": ("description", "details"),
    "thread.message": ("content", "metadata"),
    "log": ("message", "context", "exception"),
    "permission.check": ("reason", "rules_checked"),
    "thread.ended": (),
}


def build(config: RedactionConfig) -> Redactor | None:
    """The redactor `config` describes; None when redaction is turned off."""
    if not config.enabled:
        return None
    patterns: list[tuple[str, tuple[str, ...] | None]] = [(p, t) for _n, p, t in DEFAULT_PATTERNS]
    patterns += [(p, None) for p in config.patterns]
    # Personal data by trigger: e-mails on "@", numbers (cards, SSNs) on a digit.
    personal = [
        [PII_PATTERNS[kind] for kind in config.pii if kind == "email"],
        [PII_PATTERNS[kind] for kind in config.pii if kind != "email"],
    ]
    checks = {PII_PATTERNS["card"][0]: luhn}
    return Redactor(patterns, DEFAULT_KEYS + tuple(config.keys), config.replacement, checks, personal)


_current: list[Redactor | None] = []


def redactor() -> Redactor | None:
    """The process's redactor, built once from settings.REDACTION."""
    if not _current:
        _current.append(build(settings.REDACTION))
    return _current[0]


def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "REDACTION":
        _current.clear()


setting_changed.connect(_settings_changed)


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """Mask secrets in a validated event's stored fields, in place; returns the event."""
    active = redactor()
    if active is None:
        return event
    for name in EVENT_FIELDS.get(event["type"], ()):
        value = event.get(name)
        if value:
            event[name] = active.value(value)
    return event


def redact_text(value: str) -> str:
    """`value` with secrets masked, for texts stored outside ingest (a server's last error)."""
    active = redactor()
    return value if active is None or not value else active.text(value)
