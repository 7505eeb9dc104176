"""Fixed-window rate limits in the cache, for the customer's forms and the lookup page.

A cache outage must not take the customer's page down: when the cache cannot answer, the request
is allowed and the outage is logged (the forms stay CSRF-protected and length-limited).
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import cache
from django.http import HttpRequest

log = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The address Django saw; behind a proxy, set it up to pass the real address in REMOTE_ADDR."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def allow(scope: str, key: str, *, limit: int, window: int) -> bool:
    """Count one hit of `key` in `scope`; False once `limit` hits were counted in this window."""
    if limit <= 0:
        return True
    bucket = int(time.time() // window)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"baton:rl:{scope}:{digest}:{bucket}"
    try:
        if cache.add(cache_key, 1, timeout=window + 5):
            return True
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this is the first hit of a new window
        return True
    except Exception:
        log.warning("rate-limit cache unavailable; allowing %s", scope, exc_info=True)
        return True
    return int(count) <= limit


def allow_all(*checks: tuple[str, str, int, int]) -> bool:
    """Every (scope, key, limit, window) counted; allowed only if all are under their limit."""
    results = [allow(scope, key, limit=limit, window=window) for scope, key, limit, window in checks]
    return all(results)
