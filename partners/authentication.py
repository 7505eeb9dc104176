"""Partner API keys (`Authorization: Bearer <key>`) and the per-partner rate limit."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from partners.models import Partner, hash_api_key


class PartnerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Partner] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.NotAuthenticated("Send the partner API key as 'Authorization: Bearer <key>'.")
        partner = (
            Partner.objects.filter(api_key_hash=hash_api_key(key.strip()), is_active=True)
            .only("id", "slug", "name", "kind", "adapter", "timezone", "rate_limit_per_minute")
            .first()
        )
        if partner is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return None, partner

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="partner-api"'


class IsPartner(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Partner)


class PartnerRateThrottle(throttling.BaseThrottle):
    """Requests per minute per partner, counted in fixed one-minute windows in the shared cache.

    A counter (one atomic increment) rather than DRF's request history keeps the check O(1) at
    thousands of requests a minute.
    """

    def __init__(self) -> None:
        self.retry_after = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        partner = request.auth
        if not isinstance(partner, Partner):
            return True
        limit = partner.rate_limit_per_minute or settings.BATON["PARTNER_RATE_LIMIT_PER_MINUTE"]
        now = time.time()
        key = f"baton:rate:{partner.pk}:{int(now // 60)}"
        cache.add(key, 0, timeout=90)
        try:
            count = cache.incr(key)
        except ValueError:  # the window expired between add and incr
            cache.set(key, 1, timeout=90)
            count = 1
        self.retry_after = 60 - now % 60
        return count <= limit

    def wait(self) -> float:
        return self.retry_after
