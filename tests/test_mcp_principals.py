"""How /mcp trusts a checked bearer credential, and renews the check of one in use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcps.endpoint.principals import Principals
from missioncontrol.authentication import Principal

# Checks trusted 1 s, renewed 0.2 s after they were made when the credential was used.
TTL, AHEAD, RENEWED = 1.0, 0.8, 0.3


def _principal(name: str) -> Principal:
    return Principal(1, name, None, True, "operator", username=name)


class Credentials:
    """A lookup whose answers the test gives, and which may be held until released."""

    def __init__(self, *answers: Principal | Exception | None) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, raw: str, scope: dict[str, Any]) -> Principal | None:
        self.calls += 1
        answer = self.answers.pop(0)
        await self.gate.wait()
        if isinstance(answer, Exception):
            raise answer
        return answer


def _name(principal: Principal | None) -> str | None:
    return principal.name if principal is not None else None


async def test_a_credential_in_use_is_checked_again_before_its_check_expires() -> None:
    lookup = Credentials(_principal("first"), _principal("second"))
    principals = Principals(ttl=TTL, renew_ahead=AHEAD, lookup=lookup)
    assert _name(await principals.get("mct_x", {})) == "first"
    assert _name(await principals.get("mct_x", {})) == "first"  # used: worth renewing
    await asyncio.sleep(RENEWED)
    assert lookup.calls == 2  # by the timer, no request waiting for it
    assert _name(await principals.get("mct_x", {})) == "second"
    assert lookup.calls == 2


async def test_a_credential_not_presented_again_is_not_renewed_and_is_checked_on_its_next_request() -> None:
    lookup = Credentials(_principal("first"), _principal("second"))
    principals = Principals(ttl=TTL, renew_ahead=AHEAD, lookup=lookup)
    await principals.get("mct_x", {})
    await asyncio.sleep(TTL + 0.05)
    assert lookup.calls == 1
    lookup.gate.clear()
    pending = asyncio.ensure_future(principals.get("mct_x", {}))
    await asyncio.sleep(0.05)
    assert not pending.done()  # its check expired: the request waits for a new one
    lookup.gate.set()
    assert _name(await pending) == "second"


async def test_a_token_revoked_meanwhile_is_refused_once_the_renewal_finds_it() -> None:
    lookup = Credentials(_principal("a"), None, None)
    principals = Principals(ttl=TTL, renew_ahead=AHEAD, lookup=lookup)
    await principals.get("mct_x", {})
    await principals.get("mct_x", {})
    await asyncio.sleep(RENEWED)
    assert await principals.get("mct_x", {}) is None
    assert lookup.calls == 3


async def test_a_failed_renewal_keeps_the_last_check_until_it_expires() -> None:
    lookup = Credentials(_principal("check 1"), RuntimeError("database is locked"), _principal("check 3"))
    principals = Principals(ttl=TTL, renew_ahead=AHEAD, lookup=lookup)
    await principals.get("mct_x", {})
    await principals.get("mct_x", {})
    await asyncio.sleep(RENEWED)
    assert lookup.calls == 2
    assert _name(await principals.get("mct_x", {})) == "check 1"
    await asyncio.sleep(TTL - RENEWED + 0.05)
    assert _name(await principals.get("mct_x", {})) == "check 3"


async def test_a_failed_check_on_the_request_path_is_an_error_not_a_refusal() -> None:
    lookup = Credentials(RuntimeError("database is down"))
    with pytest.raises(RuntimeError):
        await Principals(lookup=lookup).get("mct_x", {})
