"""One persistent MCP client session to one server, through the official `mcp` SDK.

`Connection.run()` connects, reads the server's catalog, and holds the session open
until it is lost (a stdio server's process exits, a health probe fails, a reconnect is
asked for), then reconnects with exponential backoff and jitter. Calls share the one
session: no process spawn and no new session per call. A call is never replayed after
a reconnect: one asked for while there is no session fails with `Unavailable` (it was
never sent), one in flight when the session is lost with `Interrupted` (it was sent, and
may or may not have run: the server may have died before, during or after it).

The SDK negotiates the protocol era itself: it probes `server/discover` (2026-07-28,
stateless) and falls back to the `initialize` handshake (2025-11-25 and earlier).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from jsonschema import validators
from jsonschema.exceptions import best_match
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcps import masking

logger = logging.getLogger(__name__)

Progress = Callable[[float, float | None, str | None], Awaitable[None]]


class Unavailable(Exception):
    """The server has no live session (disconnected, connecting, or lost mid-call)."""


class Interrupted(Exception):
    """The session was lost while a call was in flight: it may or may not have run."""


class InvalidArguments(Exception):
    """Arguments that fail the tool's input schema, found before the call is forwarded."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


class ToolError(Exception):
    """The server refused a request (unknown tool, bad arguments): its JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Spec:
    """What it takes to reach one server; a changed spec means a new session."""

    id: str
    transport: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = ""
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, server_id: str, spec: dict[str, Any]) -> Spec:
        return cls(
            id=server_id,
            transport=spec["transport"],
            command=spec["command"],
            args=tuple(spec["args"]),
            env=tuple(sorted(spec["env"].items())),
            cwd=spec["cwd"],
            url=spec["url"],
            headers=tuple(sorted(spec["headers"].items())),
        )

    @cached_property
    def secrets(self) -> list[str]:
        """The secrets of its configuration, to mask in any text about it (mcps.masking)."""
        return masking.secret_values(self.url, list(self.args), dict(self.env), dict(self.headers))

    def scrub(self, text: str) -> str:
        """`text` (an error, a log line of the server) with its secrets masked: an HTTP
        client's error quotes the URL asked, a dying server may print its environment."""
        return masking.scrub(text, self.secrets)


@dataclass(frozen=True)
class Backoff:
    """Backoff with jitter (`mcps.reconnect_backoff`): attempt n waits up to base * 2**n
    ("exponential") or base * (n + 1) ("linear"), capped, and at least base / 2."""

    base: float = 1.0
    cap: float = 60.0
    kind: str = "exponential"

    def delay(self, attempt: int) -> float:
        ceiling = self.base * (attempt + 1) if self.kind == "linear" else self.base * 2**attempt
        return random.uniform(self.base / 2, min(self.cap, ceiling))


class Hooks(Protocol):
    async def status(self, server_id: str, status: str, error: str) -> None: ...
    async def connected(
        self, server_id: str, info: dict[str, Any], catalog: dict[str, list[Any]]
    ) -> None: ...
    async def catalog(self, server_id: str, catalog: dict[str, list[Any]]) -> None: ...
    async def log(self, server_id: str, level: str, logger_name: str, message: str, data: Any) -> None: ...


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass
class Connection:
    spec: Spec
    hooks: Hooks
    backoff: Backoff = field(default_factory=Backoff)
    status: str = "unknown"  # so the first status, "connecting", is always written
    error: str = ""
    client: Client | None = None
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    _validators: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    _lost: asyncio.Event = field(default_factory=asyncio.Event)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # a reconnect cuts the backoff short

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, hold the session, reconnect when lost; until cancelled or stopped."""
        while not self._stopped.is_set():
            await self._set_status("connecting" if self.attempts == 0 else "degraded", self.error)
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - any failure of a session means reconnect
                self.error = self._describe(exc)
                logger.info("mcp %s: session ended: %s", self.spec.id, self.error)
            finally:
                self.client = None
                self._ready.clear()
            if self._stopped.is_set():
                break
            await self._set_status("degraded" if self.attempts < 3 else "disconnected", self.error)
            delay = self.backoff.delay(self.attempts)
            self.attempts += 1
            self._wake.clear()
            waits = [asyncio.ensure_future(self._stopped.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def _session(self) -> None:
        self._lost.clear()
        async with contextlib.AsyncExitStack() as stack:
            transport = self._transport(stack)
            client = Client(
                transport,
                logging_callback=self._on_log,
                message_handler=self._on_message,
                log_level="info",
                cache=None,
                read_timeout_seconds=60,
            )
            await stack.enter_async_context(client)
            info = server_info(client)
            catalog = await self._fetch_catalog(client)
            self.client = client
            self.error = ""
            self.attempts = 0
            await self.hooks.connected(self.spec.id, info, catalog)
            await self._set_status("connected", "")
            self._ready.set()
            if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                listener = asyncio.get_running_loop().create_task(self._listen(client))
                stack.callback(listener.cancel)
            await self._lost.wait()
            self.error = self.error or "session lost"

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        errlog = self._stderr_pipe(stack) if self.spec.transport == "stdio" else None
        return open_transport(self.spec, errlog)

    def _stderr_pipe(self, stack: contextlib.AsyncExitStack) -> Any:
        """A pipe for the server's stderr: its lines become logs; its EOF means the process died."""
        read_fd, write_fd = os.pipe()
        writer = os.fdopen(write_fd, "w")
        reader = os.fdopen(read_fd, "rb")
        task = asyncio.get_running_loop().create_task(self._read_stderr(reader, writer))
        stack.callback(task.cancel)
        stack.callback(writer.close)
        return writer

    async def _read_stderr(self, reader: Any, writer: Any) -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), reader)
        try:
            await self._ready.wait()
            writer.close()  # only the child holds the write end now: EOF when it exits
            level = "INFO"
            while line := await stream.readline():
                text = line.decode(errors="replace").rstrip()
                if text:
                    level = _stderr_level(text, level)
                    await self.hooks.log(self.spec.id, level, "stderr", self.spec.scrub(text), None)
            if self.client is not None:
                self.error = "the server process exited"
                self._lost.set()
        finally:
            transport.close()

    async def _fetch_catalog(self, client: Client) -> dict[str, list[Any]]:
        catalog = await read_catalog(client)
        self.tools = {t["name"]: t for t in catalog["tools"]}
        self._validators = {}
        return catalog

    async def _set_status(self, status: str, error: str) -> None:
        if status != self.status or error != self.error:
            self.status = status
            await self.hooks.status(self.spec.id, status, error)

    def _describe(self, exc: BaseException) -> str:
        """What went wrong, as said to people: its secrets masked."""
        return self.spec.scrub(_describe(exc))

    def reconnect(self, reason: str = "reconnect requested") -> None:
        """Drop the session and connect again now, even in the middle of a backoff wait."""
        self.error = reason
        self.attempts = 0
        self._lost.set()
        self._wake.set()

    def stop(self) -> None:
        """End the session and the reconnect loop; `run()` returns soon after."""
        self._stopped.set()
        self._lost.set()

    # -- notifications -----------------------------------------------------------------

    async def _on_log(self, params: Any) -> None:
        data = masking.scrub_data(params.data, self.spec.secrets)
        message = data if isinstance(data, str) else (data.get("message") if isinstance(data, dict) else None)
        await self.hooks.log(
            self.spec.id, params.level, params.logger or "", str(message if message else data), data
        )

    async def _on_message(self, message: Any) -> None:
        method = getattr(message, "method", "")
        if method.endswith("/list_changed") and self.client is not None:
            asyncio.get_running_loop().create_task(self._refresh_catalog())

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers push list changes only on a `subscriptions/listen` stream."""
        caps = client.server_capabilities
        wants = {
            "tools_list_changed": bool(caps.tools and caps.tools.list_changed),
            "prompts_list_changed": bool(caps.prompts and caps.prompts.list_changed),
            "resources_list_changed": bool(caps.resources and caps.resources.list_changed),
        }
        if not any(wants.values()):
            return
        try:
            async with client.listen(**wants) as changes:
                async for _change in changes:
                    await self._refresh_catalog()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - no stream: the catalog refreshes on reconnect
            logger.info("mcp %s: list_changed stream ended: %s", self.spec.id, self._describe(exc))

    async def _refresh_catalog(self) -> None:
        client = self.client
        if client is None:
            return
        try:
            catalog = await self._fetch_catalog(client)
        except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the old catalog
            logger.warning("mcp %s: catalog refresh failed: %s", self.spec.id, self._describe(exc))
            return
        await self.hooks.catalog(self.spec.id, catalog)

    # -- requests ----------------------------------------------------------------------

    def _live(self) -> Client:
        # A stopped connection (its server disabled or removed) sends nothing more, even
        # while its session is still closing.
        if self.client is None or self._stopped.is_set():
            raise Unavailable(
                f"server {self.spec.id!r} is {self.status}" + (f": {self.error}" if self.error else "")
            )
        return self.client

    async def call_tool(
        self, name: str, arguments: dict[str, Any], timeout: float, progress: Progress | None = None
    ) -> dict[str, Any]:
        client = self._live()
        if name not in self.tools:
            raise ToolError(-32602, f"unknown tool {name!r} on server {self.spec.id!r}")
        self.check_arguments(name, arguments)
        try:
            async with asyncio.timeout(timeout):  # no task of its own per call, as wait_for makes
                result = await client.call_tool(
                    name, arguments, read_timeout_seconds=timeout, progress_callback=progress
                )
        except MCPError as exc:
            if exc.error.code == REQUEST_TIMEOUT:  # the SDK's own clock ran out first
                raise TimeoutError(exc.error.message) from exc
            if exc.error.code != CONNECTION_CLOSED:
                raise ToolError(exc.error.code, self.spec.scrub(exc.error.message)) from exc
            raise self._interrupted(client, exc) from exc
        except TimeoutError:
            raise
        except Exception as exc:
            if _is_transport_failure(exc):
                raise self._interrupted(client, exc) from exc
            raise
        return _dump(result)

    def _interrupted(self, client: Client, exc: BaseException) -> Interrupted:
        """The session broke under a call already handed to it: drop the session (if it
        is still this one) and say the call's outcome is not known."""
        error = self._describe(exc)
        if self.client is client:
            self.error = error
            self._lost.set()
        return Interrupted(
            f"server {self.spec.id!r} was lost during the call ({self.error or error}); "
            "it may or may not have run"
        )

    def check_arguments(self, name: str, arguments: dict[str, Any]) -> None:
        validator = self._validators.get(name)
        if validator is None:
            schema = self.tools[name].get("inputSchema") or {}
            try:
                validator = validators.validator_for(schema)(schema)
            except Exception:  # noqa: BLE001 - a server's broken schema: let the server judge
                logger.warning("mcp %s: tool %s has an unusable input schema", self.spec.id, name)
                return
            self._validators[name] = validator
        if validator.is_valid(arguments):
            return
        error = best_match(validator.iter_errors(arguments))
        if error is not None:
            raise InvalidArguments(".".join(str(p) for p in error.absolute_path), error.message)

    async def probe(self) -> tuple[bool, float | None, str]:
        """Ping where the protocol has it (handshake era), a cheap list otherwise."""
        client = self.client
        if client is None:
            return False, None, self.error or self.status
        start = time.perf_counter()
        try:
            async with asyncio.timeout(10):
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    await client.list_tools()
                else:
                    await client.send_ping()
        except Exception as exc:  # noqa: BLE001 - any failure is an unhealthy probe
            error = self._describe(exc) or type(exc).__name__
            if self.client is client:
                self.error = error
                self._lost.set()
            return False, None, error
        return True, (time.perf_counter() - start) * 1000, ""


def open_transport(spec: Spec, errlog: Any) -> Any:
    """The SDK transport that reaches `spec`'s server (a stdio server's stderr to `errlog`)."""
    if spec.transport == "stdio":
        params = StdioServerParameters(
            command=spec.command,
            args=list(spec.args),
            env={**_inherited_env(), **dict(spec.env)},
            cwd=spec.cwd or None,
        )
        return stdio_client(params, errlog=errlog)
    headers = dict(spec.headers)
    if spec.transport == "sse":
        return sse_client(spec.url, headers=headers)
    http = create_mcp_http_client(headers=headers)
    return streamable_http_client(spec.url, http_client=http)


def server_info(client: Client) -> dict[str, Any]:
    """What a server said about itself when the session opened."""
    return {
        "protocol_version": client.protocol_version,
        "server_info": _dump(client.server_info) if client.server_info else {},
        "capabilities": _dump(client.server_capabilities),
        "instructions": client.instructions or "",
    }


async def read_catalog(client: Client) -> dict[str, list[Any]]:
    """The server's tools, resources and prompts, every page of each it offers."""
    caps = client.server_capabilities
    catalog: dict[str, list[Any]] = {"tools": [], "resources": [], "prompts": []}
    if caps.tools is not None:
        catalog["tools"] = [_dump(t) for t in await _all_pages(client.list_tools, "tools")]
    if caps.resources is not None:
        catalog["resources"] = [_dump(r) for r in await _all_pages(client.list_resources, "resources")]
    if caps.prompts is not None:
        catalog["prompts"] = [_dump(p) for p in await _all_pages(client.list_prompts, "prompts")]
    return catalog


# The stderr a failed test connection quotes: its last lines, this many characters at most.
STDERR_TAIL_CHARS = 2000


async def try_connect(spec: Spec, timeout: float) -> dict[str, Any]:
    """Connect to `spec`'s server once, read its catalog and close: the test a person runs
    before saving a server. {"ok": true, "latency_ms", "info", "tools", "resources",
    "prompts"} or {"ok": false, "error": what went wrong in words, "detail": the exception,
    "stderr": the last lines a stdio server wrote}; secrets masked in every text."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            async with asyncio.timeout(timeout):
                async with Client(
                    open_transport(spec, errlog), cache=None, read_timeout_seconds=timeout
                ) as client:
                    info = server_info(client)
                    catalog = await read_catalog(client)
        except TimeoutError:
            failure: BaseException | None = TimeoutError(f"no answer within {timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - every failure is the test's answer
            failure = exc
        else:
            failure = None
        errlog.seek(0)
        stderr = spec.scrub(errlog.read()[-STDERR_TAIL_CHARS:].strip())
    latency = round((time.perf_counter() - start) * 1000, 1)
    if failure is not None:
        return {
            "ok": False,
            "error": spec.scrub(in_words(failure, spec)),
            "detail": spec.scrub(_describe(failure)),
            "stderr": stderr,
            "latency_ms": latency,
        }
    return {"ok": True, "latency_ms": latency, "info": info, "stderr": stderr, **catalog}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def in_words(exc: BaseException, spec: Spec) -> str:
    """Why a connection failed, as a sentence a person can act on."""
    import httpx2 as httpx  # the HTTP client the MCP SDK uses

    for leaf in _leaves(exc):
        if isinstance(leaf, FileNotFoundError) and spec.transport == "stdio":
            if spec.cwd and not os.path.isdir(spec.cwd):
                return f"The working directory {spec.cwd} does not exist."
            return f"The command {spec.command!r} was not found: check its path, or that it is on PATH."
        if isinstance(leaf, PermissionError) and spec.transport == "stdio":
            return f"The command {spec.command!r} may not be run (permission denied)."
        if isinstance(leaf, TimeoutError):
            return f"The server did not answer in time ({leaf})."
        if isinstance(leaf, httpx.HTTPStatusError):
            code = leaf.response.status_code
            hint = {
                401: ": check the credentials in the headers",
                403: ": check the credentials in the headers",
                404: ": check the URL's path",
            }.get(code, "")
            return f"The server answered HTTP {code} {leaf.response.reason_phrase}{hint}."
        if isinstance(leaf, httpx.ConnectError | httpx.ConnectTimeout):
            return f"Nothing answered at {spec.url}: is the server running, and is the URL right?"
        if isinstance(leaf, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return f"{spec.url} is not a URL the client can reach ({leaf})."
        if isinstance(leaf, MCPError) and "closed" in str(leaf).lower():
            if spec.transport == "stdio":
                return "The server process exited before it answered: see what it wrote on stderr."
            return "The server closed the connection before it answered."
        if isinstance(leaf, MCPError):
            return f"The server refused the handshake: {leaf}"
    return f"The connection failed: {_describe(exc)}"


async def _all_pages(fetch: Callable[..., Awaitable[Any]], attribute: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        page = await fetch(cursor=cursor)
        items.extend(getattr(page, attribute))
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
    return items


def _inherited_env() -> dict[str, str]:
    # What a spawned server needs from us (PATH to find node/uvx, HOME, locale), no secrets.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SYSTEMROOT", "VIRTUAL_ENV")
    return {k: os.environ[k] for k in keep if k in os.environ}


# Level names as log formats write them; the first one in a line is its record's level
# ("INFO Tool failed: Error ..." is an INFO line that quotes an error).
_LEVEL_WORD = re.compile(r"critical|error|warning|warn|debug|info", re.IGNORECASE)


def _stderr_level(line: str, previous: str = "INFO") -> str:
    """A stderr line's level: the first level name in its first 80 characters.

    An indented line continues the record above it (a wrapped message, a traceback) and
    keeps that record's level: a word on it is part of the message, not a level.
    """
    if line[:1].isspace():
        return previous
    found = _LEVEL_WORD.search(line, 0, 80)
    if found is None:
        return "INFO"
    level = found.group().upper()
    return "WARN" if level == "WARNING" else level


def _is_transport_failure(exc: BaseException) -> bool:
    return not isinstance(exc, (MCPError, ValueError, TypeError))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "Backoff",
    "Connection",
    "Hooks",
    "Interrupted",
    "InvalidArguments",
    "Progress",
    "Spec",
    "ToolError",
    "Unavailable",
]
