"""Issuing and revoking API tokens, audited: what /api/tokens and the settings page share."""

from __future__ import annotations

from typing import Any

from audit import access
from missioncontrol.models import APIToken, Team


def issue(
    actor: Any, name: str, owner: Any = None, team: Team | None = None, request: Any = None
) -> APIToken:
    """A new token acting as `owner` (default: `actor`); its raw secret, shown once, on `.raw`."""
    token, raw = APIToken.objects.issue(name, owner or actor, team)
    token.raw = raw  # type: ignore[attr-defined]
    access.record(
        actor,
        access.TOKEN_ISSUED,
        f"api_token:{token.pk}",
        details={"name": token.name, "owner": token.owner.get_username(), "team": token.team_id},
        request=request,
    )
    return token


def revoke(actor: Any, token: APIToken, request: Any = None) -> None:
    """Revoke `token` (it stays listed, with its revoked_at)."""
    token.revoke()
    access.record(
        actor, access.TOKEN_REVOKED, f"api_token:{token.pk}", details={"name": token.name}, request=request
    )
