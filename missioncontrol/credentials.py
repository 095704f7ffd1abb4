"""Credentials in request headers: what the REST authentication, the rate limits, /mcp and
the ingest edges read alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def bearer(authorization: str) -> str:
    """The credential of an `Authorization: Bearer <credential>` header, or ''."""
    scheme, _, credential = authorization.partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def scope_bearer(scope: Mapping[str, Any]) -> str:
    """The bearer credential of an ASGI HTTP request's Authorization header, or ''."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bearer(value.decode("latin-1"))
    return ""
