"""/mcp: the aggregated server over Streamable HTTP, for both protocol eras.

The SDK's session manager serves it. Its task group must be running (`run()`), and
daphne sends no lifespan events, so it starts on the first request, on the web
process's loop. Handshake-era clients get stateful sessions (`Mcp-Session-Id`);
2026-07-28 clients are served one exchange per request, as that protocol wants.

Every request needs `Authorization: Bearer <API token or JWT access token>`; without
a valid one the answer is 401 with `WWW-Authenticate: Bearer`. Past its credential's
rate (rate_limits.mcp) a request is answered 429 with Retry-After and a JSON-RPC error
(code RATE_LIMITED, `data.retry_after`), which MCP clients surface as the request's
error, before the credential is even looked up (DELETE, ending a session, is not
counted). A session belongs to the principal that opened it: another principal's
request for it (a call, its stream, DELETE) is answered 404, as for an unknown session.
The caller's role decides whether it may call tools (a viewer may only list them; a
user without a role is answered 403 with a JSON-RPC error); its team (an API token's,
see missioncontrol.authentication.Principal) is the team of its thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from audit import access
from mcps.endpoint import silent
from mcps.endpoint.principals import Principals
from mcps.endpoint.recorder import Call, CallRecorder, Session
from mcps.endpoint.router import WebRouter
from mcps.endpoint.server import build_server
from missioncontrol.authentication import Principal
from missioncontrol.credentials import scope_bearer
from missioncontrol.ingest.batcher import EventBatcher
from missioncontrol.jsontext import dumps
from missioncontrol.ratelimit import Denied, acheck_mcp

PRINCIPAL = "mc.principal"  # where __call__ leaves the authenticated caller, in the ASGI scope
# A JSON-RPC error code in the implementation-defined band (-32000..-32019) that the SDK
# does not use itself: the request was refused for its rate, retry after `data.retry_after`.
RATE_LIMITED = -32010


def client_of(ctx: Any) -> dict[str, Any]:
    """The calling client's name and version: from its handshake, or the request's `_meta`."""
    params = ctx.session.client_params
    info: Any = params.client_info if params is not None else None
    if info is None and ctx.meta:
        info = ctx.meta.get(types.CLIENT_INFO_META_KEY)
    if info is None:
        return {}
    if isinstance(info, dict):
        return {k: info[k] for k in ("name", "version") if info.get(k) is not None}
    # The handshake's Implementation model: read, not dumped (this runs on every call).
    return {k: getattr(info, k) for k in ("name", "version") if getattr(info, k, None) is not None}


@dataclass(frozen=True)
class Managers:
    streaming: StreamableHTTPSessionManager  # the SDK's default: any request, any era
    plain: StreamableHTTPSessionManager  # answers with one JSON body


class MCPEndpoint:
    def __init__(self) -> None:
        # Stored by a child process: the web process's GIL stays with the calls.
        self.batcher = EventBatcher("mcp endpoint calls", isolated=True)
        self.recorder = CallRecorder(self.batcher)
        self.server = build_server(
            WebRouter(),
            self.recorder,
            self.session_of,
            on_denied=partial(audit_denied, self.batcher),
            on_called=partial(audit_called, self.batcher),
        )
        self._managers: Managers | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Who each bearer credential is, checked every few seconds (mcps/endpoint/principals.py).
        self.principals = Principals()

    def session_of(self, ctx: Any) -> Session:
        """The call's session: who calls (the authenticated principal, and its policy
        subject). The parent thread a call names is its own (mcps/endpoint/server.py)."""
        request = ctx.request
        headers = request.headers if request is not None else {}
        principal: Principal = request.scope[PRINCIPAL]
        client = client_of(ctx)
        session_id = headers.get("mcp-session-id")
        # Keyed by the caller too: a session id presented by someone else is not theirs.
        who = owner_of(principal)
        if session_id:
            key: tuple[str, ...] = ("http", who, session_id)
        else:
            host = request.client.host if request is not None and request.client else ""
            key = ("http", who, client.get("name", ""), client.get("version", ""), host)
        return self.recorder.session(
            key,
            via="/mcp",
            principal=principal.name,
            client=client,
            subject=principal.subject(),
            team_id=principal.team_id,
            may_call_tools=principal.may_call_tools,
            user_id=principal.user_id,
        )

    async def _run(self) -> None:
        managers = Managers(
            StreamableHTTPSessionManager(app=self.server),
            # For 2026-07-28 requests that asked for no notifications (mcps/endpoint/silent.py).
            StreamableHTTPSessionManager(app=self.server, json_response=True),
        )
        # Entered and left in this one task, as anyio requires.
        async with managers.streaming.run(), managers.plain.run():
            self._managers = managers
            assert self._ready is not None
            self._ready.set()
            await asyncio.Event().wait()

    async def _started(self) -> Managers:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first request, or a new loop (tests run one per test)
            self._loop, self._ready, self._managers = loop, None, None
        if self._ready is None:
            self._ready = asyncio.Event()
            self._task = loop.create_task(self._run())
        await self._ready.wait()
        assert self._managers is not None
        return self._managers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = scope_bearer(scope)
        # Ending a session is never refused for its rate: a client told to slow down can still clean up.
        denied = await acheck_mcp(raw) if raw and scope["method"] != "DELETE" else None
        if denied is not None:
            await _too_many_requests(send, denied)
            return
        principal = await self.principals.get(raw, scope) if raw else None
        if principal is None:
            reason = "invalid, expired or revoked token" if raw else "missing 'Bearer <API token or JWT>'"
            await _unauthorized(send, reason)
            return
        refusal = principal.refusal()
        if refusal is not None:
            await _forbidden(send, refusal)
            return
        scope = {**scope, PRINCIPAL: principal, "user": session_owner(principal)}
        managers = await self._started()
        manager = managers.streaming
        if scope["method"] == "DELETE":
            session_id = dict(scope["headers"]).get(b"mcp-session-id")
            if session_id:
                self.recorder.end_under(("http", owner_of(principal), session_id.decode("latin-1")))
        elif silent.is_modern_post(scope):
            body, receive = await silent.read_body(receive, managers.plain.max_request_body_size)
            if body is not None and silent.wants_no_notifications(body):
                manager = managers.plain
        await manager.handle_request(scope, receive, send)

    async def shutdown(self) -> None:
        self.recorder.end_all()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.batcher.close()


def owner_of(principal: Principal) -> str:
    """Whose a session is: one user acting for one team (a token of another team is another caller)."""
    return f"{principal.user_id}:{principal.team_id}"


def session_owner(principal: Principal) -> AuthenticatedUser:
    """The SDK binds each session to the identity that opened it (`scope["user"]`) and
    answers anyone else's request for it (a call, its stream, DELETE) 404, as if unknown."""
    token = AccessToken(token="", client_id="mission-control", scopes=[], subject=owner_of(principal))
    return AuthenticatedUser(token)


async def _unauthorized(send: Any, reason: str) -> None:
    body = dumps({"error": {"field": "Authorization", "reason": reason}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="mcp"'),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _forbidden(send: Any, reason: str) -> None:
    """403 with a JSON-RPC error (id null), which an MCP client raises as its request's error."""
    error = {"code": types.INVALID_REQUEST, "message": f"Forbidden: {reason}"}
    body = dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _too_many_requests(send: Any, denied: Denied) -> None:
    """429 with Retry-After, and a JSON-RPC error an MCP client hands to its caller.

    The body is not read (a flood costs nothing), so the error's id is null: the SDK
    client answers the pending request with it (a spec-correct server may return a
    JSON-RPC error with a non-2xx status)."""
    error = {
        "code": RATE_LIMITED,
        "message": f"Rate limit exceeded: {denied.reason}",
        "data": denied.as_dict(),
    }
    body = dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(denied.retry_after).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def audit_called(batcher: EventBatcher, session: Session, call: Call) -> None:
    """A forwarded call, in the access audit: stored with the call's own events, off its path."""
    failed = bool(call.error) or bool(call.result and call.result.get("isError"))
    _audit(
        batcher,
        _username(session),
        access.TOOL_CALL,
        f"{call.mcp_id}/{call.tool}",
        outcome=access.FAILURE if failed else access.SUCCESS,
        details={"via": session.via, "thread_id": call.thread_id, "principal": session.principal},
        actor_id=session.user_id,
    )


def audit_denied(batcher: EventBatcher, session: Session, mcp_id: str, tool: str) -> None:
    _audit(
        batcher,
        _username(session),
        access.TOOL_CALL,
        f"{mcp_id}/{tool}",
        outcome=access.DENIED,
        details={"via": session.via, "principal": session.principal, "reason": "role may not call tools"},
        actor_id=session.user_id,
    )


def _audit(batcher: EventBatcher, actor: str, action: str, target: str, **kwargs: Any) -> None:
    batcher.add_access(access.row(actor, action, target, **kwargs))


def _username(session: Session) -> str:
    """The user's name alone, without the token's ("olga (token ci)": "olga")."""
    return session.principal.split(" (token ")[0]


mcp_endpoint = MCPEndpoint()
