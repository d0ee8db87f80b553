"""Permission classes: authentication is checked from the token alone."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from domain.errors import Forbidden
from graph.context import Info


class IsAuthenticated(BasePermission):
    message = "Authentication required."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_viewer()  # raises Unauthenticated with its own code
        return True


class IsAdmin(BasePermission):
    message = "Administrators only."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not info.context.require_viewer().is_admin:
            raise Forbidden(self.message)
        return True
