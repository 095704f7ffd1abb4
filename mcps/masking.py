"""A server's connection as shown to people: secrets masked, for everyone but admins.

`env` and `headers` values are masked for everyone (they are set, never read back).
The `url` (its userinfo, its query values) and the `args` (the value of a secret-named
flag: `--token X`, `--api-key=X`, `-p X`; a `NAME=value` with a secret-looking name; a
URL among them; anything the ingest redaction rules recognise, such as `sk-...` or
`ghp_...`) are masked for everyone but admins, who manage the servers and need the
real command line. Every surface (REST, GraphQL, the pages, the admin) shows
`MCPServer.connection_for(user)`, built here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from missioncontrol.redaction import redact_text

MASK = "***"
# A flag or variable name that says its value is a secret: token, secret, password,
# api key, credential, auth, cookie, session, private key, or a bare `key`.
SECRET_NAME = re.compile(
    r"(?i)(token|secret|pass(word|wd|phrase)?|pwd|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|cookie|session|^-*key$)"
)
# Short flags that take a password in common tools (mysql -pX, psql -W is a switch).
SECRET_SHORT_FLAGS = frozenset({"-p"})
_FLAG = re.compile(r"^(-{1,2}[A-Za-z][\w.-]*)(=(.*))?$", re.DOTALL)
_GO_PASSWORD_FLAG = re.compile(r"(?i)^-(password|passwd|passphrase|pass|pwd)(=|$)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$", re.DOTALL)


def masked_mapping(mapping: dict[str, Any]) -> dict[str, str]:
    """Env or headers: which are set, never their values."""
    return dict.fromkeys(mapping, MASK)


def mask_url(url: str) -> str:
    """`url` with its userinfo and every query value masked."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        query = urlencode([(name, MASK) for name, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_flag(flag: str) -> bool:
    return flag in SECRET_SHORT_FLAGS or bool(SECRET_NAME.search(flag.lstrip("-")))


def _mask_value(value: str) -> str:
    if "://" in value:
        return mask_url(value)
    return redact_text(value)


def mask_args(args: list[str]) -> list[str]:
    """A command line with the values of secret-named flags and assignments masked."""
    out: list[str] = []
    expecting_secret = False
    for arg in args:
        text = str(arg)
        if expecting_secret and not text.startswith("-"):
            out.append(MASK)
            expecting_secret = False
            continue
        expecting_secret = False
        flag = _FLAG.match(text)
        glued = text[:2] in SECRET_SHORT_FLAGS and len(text) > 2 and not _GO_PASSWORD_FLAG.match(text)
        if glued and not text.startswith("--"):
            out.append(text[:2] + MASK)  # -pSECRET, as mysql takes it
        elif flag is not None and _secret_flag(flag.group(1)):
            # --token X, --api-key=X, -p X, -token X (Go style)
            expecting_secret = flag.group(2) is None
            out.append(flag.group(1) if expecting_secret else f"{flag.group(1)}={MASK}")
        elif flag is not None:
            value = flag.group(3)
            out.append(text if value is None else f"{flag.group(1)}={_mask_value(value)}")
        elif (assignment := _ASSIGNMENT.match(text)) is not None and SECRET_NAME.search(assignment.group(1)):
            out.append(f"{assignment.group(1)}={MASK}")
        else:
            out.append(_mask_value(text))
    return out


def masked_spec(spec: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """A connection spec as shown: env and headers always masked, url and args unless `reveal`."""
    shown = {
        **spec,
        "env": masked_mapping(spec.get("env") or {}),
        "headers": masked_mapping(spec.get("headers") or {}),
    }
    if not reveal:
        shown["url"] = mask_url(spec.get("url") or "")
        shown["args"] = mask_args(list(spec.get("args") or []))
    return shown


# A secret shorter than this is not looked for in text (a flag's `1`, an env's `on`).
_SHORTEST_SECRET = 4


def _url_secrets(url: str) -> list[str]:
    """The userinfo (whole, and its password) and every query value of `url`, as written
    and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        found += [userinfo, userinfo.partition(":")[2]]
    for pair in parts.query.split("&"):
        found.append(pair.partition("=")[2])
    found += [value for _name, value in parse_qsl(parts.query, keep_blank_values=True)]
    return found


def secret_values(url: str, args: list[str], env: dict[str, Any], headers: dict[str, Any]) -> list[str]:
    """The values of a server's connection that are secrets, longest first: env and header
    values (a header's credential after its scheme word too), the URL's userinfo and query
    values, and what `mask_args` masks in the arguments."""
    found: list[str] = [str(v) for v in env.values()]
    for value in map(str, headers.values()):
        found += [value, value.partition(" ")[2]]
    found += _url_secrets(url)
    for arg, shown in zip(map(str, args), mask_args(list(args)), strict=True):
        if arg == shown:
            continue
        if "://" in arg:
            found += _url_secrets(arg.partition("=")[2] if _FLAG.match(arg) else arg)
        elif shown.endswith(MASK):
            found.append(arg[len(shown) - len(MASK) :])  # --key=X, -pX, X
        else:
            found.append(arg)  # something the redaction rules recognised inside it
    unique = {value for value in found if len(value) >= _SHORTEST_SECRET}
    return sorted(unique, key=lambda value: (-len(value), value))


def scrub(text: str, secrets: list[str]) -> str:
    """`text` (an error, a log line) with each of `secrets` masked wherever it appears."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_data(data: Any, secrets: list[str]) -> Any:
    """`scrub` over every string of a JSON-like value (a log notification's data)."""
    if isinstance(data, str):
        return scrub(data, secrets)
    if isinstance(data, dict):
        return {key: scrub_data(value, secrets) for key, value in data.items()}
    if isinstance(data, list):
        return [scrub_data(value, secrets) for value in data]
    return data
