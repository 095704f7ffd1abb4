"""Servers from an MCP Registry API (`GET /v0/servers`, the official registry's format).

Each registry entry (a server.json) becomes one `mcpServers` entry, then goes through
`register` like any other source:
- a remote (`streamable-http` or `sse`) with a concrete URL: that URL, with the headers
  whose value the entry gives;
- else a stdio package: npm through `npx -y id@version`, PyPI through `uvx id==version`,
  OCI through `docker run -i --rm id:version`, with the arguments and environment the
  entry gives values (or defaults) for.
An entry that needs something only the user can supply (a required secret, an input
without a value, a URL template) is reported with the reason and skipped. Servers the
registry no longer lists, or that `include` no longer matches, are disabled.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import httpx

from mcps.models import MCPServer
from mcps.registration import Registration, register, slug_for

PAGE_LIMIT = 100
MAX_PAGES = 100
TIMEOUT = 10.0


class RegistryError(Exception):
    """The registry could not be read: unreachable, an error status, or not its format."""


def servers_url(url: str) -> str:
    """Accept the registry's base URL or its list endpoint."""
    url = url.rstrip("/")
    return url if url.endswith(("/v0/servers", "/v0.1/servers")) else f"{url}/v0/servers"


def fetch(url: str, client: httpx.Client | None = None) -> list[dict[str, Any]]:
    """Every server (latest version) the registry lists: the `server` objects."""
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    latest: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    try:
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": PAGE_LIMIT, "version": "latest"}
            if cursor:
                params["cursor"] = cursor
            page = _get(http, servers_url(url), params)
            for item in page["servers"]:
                server = item.get("server", item) if isinstance(item, dict) else None
                named = isinstance(server, dict) and isinstance(server.get("name"), str)
                if named and (_is_latest(item) or server["name"] not in latest):
                    latest[server["name"]] = server
            cursor = (page.get("metadata") or {}).get("nextCursor") or None
            if not cursor:
                break
    finally:
        if own:
            http.close()
    return list(latest.values())


def _get(http: httpx.Client, url: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        response = http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise RegistryError(f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise RegistryError(f"{url}: HTTP {response.status_code}")
    try:
        page = response.json()
    except ValueError as exc:
        raise RegistryError(f"{url}: not JSON") from exc
    if not isinstance(page, dict) or not isinstance(page.get("servers"), list):
        raise RegistryError(f"{url}: expected {{'servers': [...]}}")
    return page


def _is_latest(item: Any) -> bool:
    meta = item.get("_meta") if isinstance(item, dict) else None
    official = (meta or {}).get("io.modelcontextprotocol.registry/official") or {}
    return bool(official.get("isLatest"))


class Unusable(ValueError):
    """This entry needs something the registry does not give (a secret, a choice)."""


def entry_for(server: dict[str, Any]) -> dict[str, Any]:
    """The `mcpServers` entry for one registry server, or Unusable with the reason."""
    reasons: list[str] = []
    for remote in server.get("remotes") or []:
        try:
            return _remote(remote)
        except Unusable as exc:
            reasons.append(str(exc))
    for package in server.get("packages") or []:
        try:
            return _package(package)
        except Unusable as exc:
            reasons.append(str(exc))
    raise Unusable("; ".join(reasons) or "no remote and no package")


def _remote(remote: dict[str, Any]) -> dict[str, Any]:
    kind, url = remote.get("type"), remote.get("url")
    if kind not in ("streamable-http", "sse"):
        raise Unusable(f"remote of type {kind!r} is not supported")
    if not isinstance(url, str) or "{" in url:
        raise Unusable(f"remote URL {url!r} needs values only you can supply")
    entry: dict[str, Any] = {"url": url, "type": "sse" if kind == "sse" else "http"}
    headers = _values(remote.get("headers"), "header")
    if headers:
        entry["headers"] = headers
    return entry


def _package(package: dict[str, Any]) -> dict[str, Any]:
    transport = (package.get("transport") or {}).get("type", "stdio")
    if transport != "stdio":
        raise Unusable(f"package over {transport} needs a URL only you can supply")
    kind, ident, version = package.get("registryType"), package.get("identifier"), package.get("version")
    if not isinstance(ident, str) or not ident:
        raise Unusable("package without an identifier")
    arguments = _arguments(package.get("runtimeArguments")), _arguments(package.get("packageArguments"))
    if kind == "npm":
        command, args = "npx", ["-y", *arguments[0], f"{ident}@{version}" if version else ident]
    elif kind == "pypi":
        command, args = "uvx", [*arguments[0], f"{ident}=={version}" if version else ident]
    elif kind == "oci":
        command = "docker"
        args = ["run", "-i", "--rm", *arguments[0], f"{ident}:{version}" if version else ident]
    else:
        raise Unusable(f"package type {kind!r} is not supported (npm, pypi, oci)")
    entry: dict[str, Any] = {"command": command, "args": [*args, *arguments[1]]}
    env = _values(package.get("environmentVariables"), "environment variable")
    if env:
        entry["env"] = env
    return entry


def _value(item: dict[str, Any]) -> str | None:
    value = item.get("value", item.get("default"))
    if isinstance(value, str) and "{" in value:
        return None  # a template over variables the user has to fill in
    return value if isinstance(value, str) else None


def _values(items: Any, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, value = item.get("name"), _value(item)
        if value is None:
            if item.get("isRequired") or item.get("isSecret"):
                raise Unusable(f"{what} {name} is required and has no value")
            continue
        out[str(name)] = value
    return out


def _arguments(items: Any) -> list[str]:
    out: list[str] = []
    for item in items or []:
        value = _value(item)
        if value is None:
            if item.get("isRequired"):
                label = item.get("name") or item.get("valueHint") or "argument"
                raise Unusable(f"argument {label} is required and has no value")
            continue
        if item.get("type") == "named":
            out += [str(item["name"]), value]
        else:
            out.append(value)
    return out


def sync(url: str, include: tuple[str, ...] = ("*",), client: httpx.Client | None = None) -> Registration:
    """Register the registry's servers that `include` matches; disable the ones gone."""
    result = Registration()
    wanted: set[str] = set()
    for server in fetch(url, client):
        name = server["name"]
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in include):
            continue
        try:
            entry = entry_for(server)
        except Unusable as exc:
            result.errors[name] = str(exc)
            continue
        entry["name"] = server.get("title") or name
        wanted.add(slug_for(name))
        register(name, entry, MCPServer.Source.REGISTRY, result)
    gone = MCPServer.objects.filter(source=MCPServer.Source.REGISTRY, enabled=True).exclude(id__in=wanted)
    result.updated += list(gone.values_list("id", flat=True))
    gone.update(enabled=False)
    return result
