"""The partner API keeps accepting while the cache (Redis) is down: rate limiting fails open locally."""

import json
from datetime import UTC, datetime

import pytest
import redis
import time_machine
from django.core.cache import cache

from partners import authentication
from partners.models import InboundMessage

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/partner/v1/events"


def event(n: int) -> dict:
    return {
        "reference": "SWIFT-77",
        "event_id": f"ev-{n}",
        "status": "in_transit",
        "occurred_at": "2026-11-23T09:00:00Z",
    }


@pytest.fixture
def cache_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(cache, "incr", refuse)
    monkeypatch.setattr(cache, "add", refuse)
    authentication.local_counter.__init__()


def test_events_are_accepted_while_the_rate_limit_cache_is_down(custody, partner_client, cache_down, caplog):
    client = partner_client(custody.partner)

    codes = [
        client.post(EVENTS_URL, data=json.dumps(event(n)), content_type="application/json").status_code
        for n in range(3)
    ]

    assert codes == [202, 202, 202]
    assert InboundMessage.objects.filter(state=InboundMessage.State.RECEIVED).count() == 3
    assert [r.message for r in caplog.records if "rate-limit cache unavailable" in r.message]


def test_rate_limit_still_holds_per_process_while_the_cache_is_down(custody, partner_client, cache_down):
    custody.partner.rate_limit_per_minute = 2
    custody.partner.save(update_fields=["rate_limit_per_minute"])
    client = partner_client(custody.partner)

    with time_machine.travel(datetime(2026, 11, 23, 9, 0, 20, tzinfo=UTC), tick=False):
        codes = [
            client.post(EVENTS_URL, data=json.dumps(event(n)), content_type="application/json").status_code
            for n in range(3)
        ]

    assert codes == [202, 202, 429]


def test_processes_lease_numbers_of_the_window_ahead_and_never_hand_out_one_twice(monkeypatch):
    cache.clear()
    trips: list[int] = []
    incr = cache.incr
    monkeypatch.setattr(cache, "incr", lambda key, delta=1: trips.append(delta) or incr(key, delta))
    web1, web2 = authentication.WindowLeases(), authentication.WindowLeases()

    numbers = [web.number("p", 7, 100, lease=4) for _ in range(5) for web in (web1, web2)]

    assert sorted(numbers) == sorted(set(numbers))  # unique across processes
    assert numbers[:4] == [1, 5, 2, 6]  # each process uses its own run of four
    assert numbers[-2:] == [9, 13]  # then each leases the next run
    assert trips == [4, 4, 4, 4]  # one increment a lease (the window's first finds no key: an add)
    assert web1.number("p", 7, 101, lease=4) == 1  # a new window starts again
