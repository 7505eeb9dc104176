"""API permissions by Django permission (roles are groups; check permissions, never is_staff)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

OPERATE = "contactcentre.operate"


class CanOperate(BasePermission):
    """Operations only: exports, scorecards, merchant webhook endpoints."""

    message = "This needs the operations permission (contactcentre.operate)."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(OPERATE))
