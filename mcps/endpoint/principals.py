"""Who a /mcp bearer credential stands for, checked at most every few seconds per credential.

Checking a credential costs a handful of database reads (its token, role, teams): 2 to
5 ms of an agent's call. A checked credential is trusted for `ttl` seconds, so a
revoked token, or a changed role, applies to /mcp within that time.

A credential in use is checked again shortly before its check expires, by a timer
rather than by a request: `renew_ahead` seconds before the expiry, if any request
presented it since its last check, it is checked again in the background. An agent
calling at least once per `ttl` then never waits for the database after its first
call, and the check does not run alongside a call just made, as one started by the
request itself would (a check of a few ms in a thread slows the event loop serving
that call). What the check finds (a revoked token included) holds from the next
request on. A credential unused through its `ttl` is not renewed: its next request
checks it on its path, as the first one did.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from missioncontrol.authentication import Principal, principal_for_bearer

logger = logging.getLogger(__name__)

# The credential and the request's ASGI scope (for the access audit) -> its Principal, or None.
Lookup = Callable[[str, dict[str, Any]], Awaitable[Principal | None]]
MAX_ENTRIES = 10_000  # past this many credentials, the expired ones are forgotten


async def _lookup(raw: str, scope: dict[str, Any]) -> Principal | None:
    return await sync_to_async(principal_for_bearer, thread_sensitive=False)(raw, scope)


@dataclass(slots=True)
class _Entry:
    checked_at: float
    principal: Principal
    used: bool = False  # presented since its check: worth renewing


class Principals:
    def __init__(
        self,
        *,
        ttl: float = 5.0,
        renew_ahead: float = 1.0,
        lookup: Lookup = _lookup,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.renew_ahead = ttl, renew_ahead
        self._lookup, self._clock = lookup, clock
        self._entries: dict[str, _Entry] = {}
        self._renewing: dict[str, asyncio.Task[None]] = {}

    async def get(self, raw: str, scope: dict[str, Any]) -> Principal | None:
        """The principal of `raw`, or None if it is no valid credential."""
        key = hashlib.sha256(raw.encode()).hexdigest()  # the credential itself is not kept
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.checked_at < self.ttl:
            entry.used = True
            return entry.principal
        await self._check(key, raw, scope)
        found = self._entries.get(key)
        return found.principal if found is not None else None

    async def _check(self, key: str, raw: str, scope: dict[str, Any], background: bool = False) -> None:
        started = self._clock()
        try:
            principal = await self._lookup(raw, scope)
        except Exception:
            if background:  # the entry expires as it would have; its next request checks
                logger.exception("mcp endpoint: re-checking a credential failed")
                return
            raise
        if principal is None:
            self._entries.pop(key, None)
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries = {k: e for k, e in self._entries.items() if started - e.checked_at < self.ttl}
        # Trusted from when the check began: what changed during it is seen by the next one.
        self._entries[key] = _Entry(started, principal)
        delay = self.ttl - self.renew_ahead - (self._clock() - started)
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._renew, key, raw, scope)

    def _renew(self, key: str, raw: str, scope: dict[str, Any]) -> None:
        entry = self._entries.get(key)
        if entry is None or not entry.used or key in self._renewing:
            return
        task = asyncio.get_running_loop().create_task(self._check(key, raw, scope, background=True))
        self._renewing[key] = task
        task.add_done_callback(lambda _: self._renewing.pop(key, None))

    def forget(self) -> None:
        """Check every credential again on its next request."""
        self._entries.clear()
