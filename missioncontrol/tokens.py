"""Issuing and revoking API tokens, audited: what /api/tokens and the settings page share."""

from __future__ import annotations

from typing import Any

from audit import access
from missioncontrol import roles
from missioncontrol.models import APIToken, Team


class MoreThanYours(PermissionError):
    """A token asked for a user holding privilege its issuer lacks."""

    def __init__(self, owner: Any) -> None:
        super().__init__(
            f"{owner.get_username()} holds privileges you do not (a superuser, or permissions beyond "
            "your role): only a user holding them all may issue a token acting as it"
        )


def check_owner(actor: Any, owner: Any) -> None:
    """MoreThanYours unless `actor` may issue a token acting as `owner` (see roles.holds_no_more_than)."""
    if owner is not None and owner != actor and not roles.holds_no_more_than(owner, actor):
        raise MoreThanYours(owner)


def issue(
    actor: Any,
    name: str,
    owner: Any = None,
    team: Team | None = None,
    request: Any = None,
    scope: str = APIToken.Scope.ALL,
) -> APIToken:
    """A new token acting as `owner` (default: `actor`); its raw secret, shown once, on `.raw`.
    `scope` "metrics" makes a metrics-only token (a Prometheus scraper's).

    MoreThanYours if `owner` holds privilege `actor` lacks.
    """
    check_owner(actor, owner)
    token, raw = APIToken.objects.issue(name, owner or actor, team, scope)
    token.raw = raw  # type: ignore[attr-defined]
    access.record(
        actor,
        access.TOKEN_ISSUED,
        f"api_token:{token.pk}",
        details={
            "name": token.name,
            "owner": token.owner.get_username(),
            "team": token.team_id,
            "scope": token.scope,
        },
        request=request,
    )
    return token


def revoke(actor: Any, token: APIToken, request: Any = None) -> None:
    """Revoke `token` (it stays listed, with its revoked_at)."""
    token.revoke()
    access.record(
        actor, access.TOKEN_REVOKED, f"api_token:{token.pk}", details={"name": token.name}, request=request
    )
