"""Django's Redis cache with an `incr` of one round trip: the partner rate limit counts every request."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

# Django's client sends EXISTS, then INCRBY: two round trips on every partner request. Same rule
# (a missing key is a ValueError, never created at 1 without its expiry), one trip.
_INCR_EXISTING = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end"
    " return false"
)


class OneTripRedisCacheClient(RedisCacheClient):
    def incr(self, key: Any, delta: int) -> int:
        value = self.get_client(key, write=True).eval(_INCR_EXISTING, 1, key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)


class OneTripRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = OneTripRedisCacheClient
