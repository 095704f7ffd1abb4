"""WebSocket origin validation: a browser page of another site cannot open /ws/.

Browsers send `Origin` on every WebSocket handshake and let any page open a socket to
any host, cookies included (cross-site WebSocket hijacking). A handshake is accepted
when its Origin is
- the server's own origin (the Origin's host and port are the request's Host, and that
  host passes ALLOWED_HOSTS): the pages Mission Control serves itself;
- or one of `security.allowed_origins` (MC_ALLOWED_ORIGINS) or CSRF_TRUSTED_ORIGINS,
  e.g. `https://dashboard.example.com`, `https://*.example.com`.
A handshake without an Origin is not a browser's (scripts, agents, the test client):
it is let through, to be authenticated like any API client.

A refused handshake is closed before it is accepted (HTTP 403 under daphne), with
close code 4003.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger(__name__)
CLOSE_FORBIDDEN_ORIGIN = 4003
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _normalise(origin: str) -> str | None:
    """`scheme://host:port` with the default port made explicit; None if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}:{port or _DEFAULT_PORTS.get(parts.scheme, '')}"


def allowed_origins() -> list[str]:
    configured = list(settings.WS_ALLOWED_ORIGINS) + list(settings.CSRF_TRUSTED_ORIGINS)
    return [n for n in (_normalise(o) if o != "*" else "*" for o in configured) if n]


def origin_allowed(origin: str, host: str) -> bool:
    """Whether a handshake from `origin` to this server (its Host header `host`) may proceed."""
    normal = _normalise(origin)
    if normal is None:
        return False
    patterns = allowed_origins()
    if "*" in patterns or any(fnmatch.fnmatchcase(normal, p) for p in patterns):
        return True
    # Same origin: the page was served by this host, and the host is one we serve.
    origin_host = normal.split("://", 1)[1]
    domain, port = split_domain_port(host.lower())
    scheme = normal.split("://", 1)[0]
    request_host = f"{domain}:{port or _DEFAULT_PORTS.get(scheme, '')}"
    return bool(domain) and origin_host == request_host and validate_host(domain, settings.ALLOWED_HOSTS)


class OriginValidator:
    """ASGI middleware for the websocket protocol: refuse other sites' pages."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            if not origin_allowed(text, headers.get(b"host", b"").decode("latin-1")):
                logger.warning("websocket: refused a handshake from origin %r", text[:200])
                message = await receive()
                assert message["type"] == "websocket.connect", message
                await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN_ORIGIN})
                return None
        return await self.application(scope, receive, send)
