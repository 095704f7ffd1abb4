"""What the bare ASGI ingest edges share: POST /api/ingest/events (ingest.edge) and OTLP's
/v1/traces and /v1/logs (ingest.otlp.edge).

Each reads the ingest key from the headers, reads the body within its limit (refused
before reading when the declared Content-Length is over it, and as soon as the bytes
received pass it), writes its answer, and raises an `Answer` for any answer other than
its result, which each edge writes in its own format (a JSON error, a google.rpc.Status).
"""

from __future__ import annotations

from typing import Any

from missioncontrol.credentials import bearer


class Answer(Exception):
    """An HTTP answer other than the request's result: the field at fault (None for the
    request as a whole), the reason, more to say in a JSON answer, and response headers
    (by keyword, `_` for `-`: `Retry_After="5"`)."""

    def __init__(
        self, status: int, field: str | None, reason: str, extra: dict[str, Any] | None = None, **headers: str
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason
        self.extra = extra or {}
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}

    @property
    def message(self) -> str:
        """The field and the reason as one sentence ("body larger than 100 bytes")."""
        return f"{self.field} {self.reason}" if self.field else self.reason

    @property
    def body(self) -> dict[str, Any]:
        """The answer's JSON: `{"error": {"field", "reason", ...}}`."""
        return {"error": {"field": self.field, "reason": self.reason, **self.extra}}


def ingest_key(headers: dict[bytes, bytes], *, api_key_header: bool = False) -> str:
    """The key of `Authorization: Bearer <key>`, else (with `api_key_header`) of
    `X-API-Key: <key>`, or ''."""
    raw = bearer(headers.get(b"authorization", b"").decode("latin-1"))
    if raw or not api_key_header:
        return raw
    return headers.get(b"x-api-key", b"").decode("latin-1").strip()


async def read_body(headers: dict[bytes, bytes], receive: Any, limit: int) -> bytes:
    """The request's body; 413 past `limit` bytes (declared or received), 400 for a
    Content-Length that is not an integer; ConnectionAbortedError if the client went away."""
    try:
        declared = int(headers.get(b"content-length", b"0"))
    except ValueError as exc:
        raise Answer(400, "Content-Length", "not an integer") from exc
    if declared > limit:
        raise Answer(413, "body", f"larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Answer(413, "body", f"larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Any, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    """Send the whole answer: `status`, `headers`, then `body`."""
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
