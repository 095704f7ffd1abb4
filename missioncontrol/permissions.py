"""The REST permission classes: what each role may do on each view.

Every view needs a signed-in user (session, JWT or API token). Safe methods need the
view's `read_permission` (a viewer's by default), others its `write_permission`
(an admin's by default). Superusers pass everything.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from missioncontrol import roles


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        if request.method in SAFE_METHODS:
            needed = getattr(view, "read_permission", roles.READ)
        else:
            needed = getattr(view, "write_permission", roles.MANAGE_SERVERS)
        if needed is None:
            return True
        if not roles.can(user, needed):
            self.message = f"Your role does not allow this (needs {needed})."
            return False
        return True
