"""The Redis cache's one-round-trip `incr` keeps Django's rules (needs a Redis: REDIS_URL)."""

import os
import uuid

import pytest

from hub.cache import OneTripRedisCache

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture
def redis_cache():
    cache = OneTripRedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    yield cache
    cache.delete_many(["counter", "missing"])


def test_incr_counts_an_existing_key_in_one_command_and_keeps_its_expiry(redis_cache, monkeypatch):
    redis_cache.add("counter", 1, timeout=90)
    client = redis_cache._cache.get_client(write=True)
    sent: list[str] = []
    execute = type(client).execute_command

    def counted(self, *args, **kwargs):
        sent.append(args[0])
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(type(client), "execute_command", counted)

    assert redis_cache.incr("counter") == 2
    assert redis_cache.incr("counter", 5) == 7
    assert sent == ["EVAL", "EVAL"]
    assert 0 < client.ttl(redis_cache.make_key("counter")) <= 90


def test_incr_of_a_missing_key_is_a_value_error_and_creates_nothing(redis_cache):
    with pytest.raises(ValueError, match="not found"):
        redis_cache.incr("missing")

    assert redis_cache.get("missing") is None
