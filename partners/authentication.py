"""Partner API keys (`Authorization: Bearer <key>`) and the per-partner rate limit."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from partners.models import Partner

log = logging.getLogger(__name__)


class PartnerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Partner] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.NotAuthenticated("Send the partner API key as 'Authorization: Bearer <key>'.")
        partner = Partner.for_api_key(key.strip())
        if partner is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return None, partner

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="partner-api"'


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    """Documents the partner key in the OpenAPI schema, so clients (and fuzzers) know to send it."""

    target_class = PartnerKeyAuthentication
    name = "partnerKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The partner's API key."}


class IsPartner(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Partner)


class LocalWindowCounter:
    """Per-process fixed-window counters, used while the shared cache is unreachable."""

    def __init__(self) -> None:
        self.window = -1
        self.counts: dict[int, int] = {}
        self.lock = threading.Lock()
        self.warned_window = -1

    def incr(self, partner_id: int, window: int) -> int:
        with self.lock:
            if window != self.window:  # only the current window is kept: memory stays bounded
                self.window, self.counts = window, {}
            self.counts[partner_id] = self.counts.get(partner_id, 0) + 1
            return self.counts[partner_id]

    def warn_once(self, window: int, exc: Exception) -> None:
        with self.lock:
            if window == self.warned_window:
                return
            self.warned_window = window
        log.warning("rate-limit cache unavailable (%s); counting per process until it is back", exc)


local_counter = LocalWindowCounter()


class PartnerRateThrottle(throttling.BaseThrottle):
    """Requests per minute per partner, counted in fixed one-minute windows in the shared cache.

    A counter (one atomic increment) rather than DRF's request history keeps the check O(1) at
    thousands of requests a minute. When the cache (Redis) is down the limit fails open to a
    per-process count: ingest needs only PostgreSQL, so a cache outage must not refuse partners.
    """

    def __init__(self) -> None:
        self.retry_after = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        partner = request.auth
        if not isinstance(partner, Partner):
            return True
        limit = partner.rate_limit_per_minute or settings.BATON["PARTNER_RATE_LIMIT_PER_MINUTE"]
        now = time.time()
        window = int(now // 60)
        self.retry_after = 60 - now % 60
        try:
            count = shared_count(partner.pk, window)
        except Exception as exc:  # any cache failure (connection refused, timeout, OOM): count locally
            local_counter.warn_once(window, exc)
            count = local_counter.incr(partner.pk, window)
        return count <= limit

    def wait(self) -> float:
        return self.retry_after


def shared_count(partner_id: int, window: int) -> int:
    """This request's number in the partner's window, from the shared cache."""
    key = f"baton:rate:{partner_id}:{window}"
    try:
        return int(cache.incr(key))  # one round trip for every request but a window's first
    except ValueError:  # the window's first request (or another process just opened it)
        return 1 if cache.add(key, 1, timeout=90) else int(cache.incr(key))
