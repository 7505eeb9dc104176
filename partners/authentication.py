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


class WindowLeases:
    """Numbers in each partner's shared window that this process took ahead (a lease) and has not used.

    Asking the shared cache on every request cost about 0.3 ms of CPU a request (a Redis round trip
    and its client); a process takes a run of numbers at once instead (one increment by the lease) and
    hands them out itself. Numbers stay unique across processes, so the limit is never exceeded; what
    a process leased but did not use when the window closes is lost, so a partner can be refused up
    to one lease per web process early (1% of its limit each, see LEASE_SHARE).
    """

    def __init__(self) -> None:
        self.window = -1
        self.spans: dict[str, tuple[int, int]] = {}  # owner -> (next number, last number leased)
        self.lock = threading.Lock()

    def number(self, owner: str, partner_id: int, window: int, lease: int) -> int:
        """This request's number in the partner's window (the first request of a window is 1)."""
        with self.lock:
            if window != self.window:  # only the current window is kept: memory stays bounded
                self.window, self.spans = window, {}
            first, last = self.spans.get(owner, (1, 0))
            if first <= last:
                self.spans[owner] = (first + 1, last)
                return first
        last = shared_count(partner_id, window, lease)  # a round trip: outside the lock
        with self.lock:
            if window == self.window and lease > 1:
                self.spans[owner] = (last - lease + 2, last)
        return last - lease + 1


leases = WindowLeases()
# A process leases this share of a partner's limit at a time (at least one request).
LEASE_SHARE = 100


class PartnerRateThrottle(throttling.BaseThrottle):
    """Requests per minute per partner, counted in fixed one-minute windows in the shared cache.

    A counter (one atomic increment per lease of requests, `WindowLeases`) rather than DRF's request
    history keeps the check O(1) at thousands of requests a minute. When the cache (Redis) is down
    the limit fails open to a per-process count: ingest needs only PostgreSQL, so a cache outage must
    not refuse partners.
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
        # Keyed by the key hash as well: a test database may hand a partner's id out again.
        owner = f"{partner.pk}:{partner.api_key_hash}"
        try:
            count = leases.number(owner, partner.pk, window, max(1, limit // LEASE_SHARE))
        except Exception as exc:  # any cache failure (connection refused, timeout, OOM): count locally
            local_counter.warn_once(window, exc)
            count = local_counter.incr(partner.pk, window)
        return count <= limit

    def wait(self) -> float:
        return self.retry_after


def shared_count(partner_id: int, window: int, lease: int = 1) -> int:
    """The last of `lease` numbers taken in the partner's window, from the shared cache."""
    key = f"baton:rate:{partner_id}:{window}"
    try:
        return int(cache.incr(key, lease))  # one round trip for every lease but a window's first
    except ValueError:  # the window's first request (or another process just opened it)
        return lease if cache.add(key, lease, timeout=90) else int(cache.incr(key, lease))
