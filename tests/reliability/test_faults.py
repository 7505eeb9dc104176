"""Nothing acknowledged is lost: partner events streamed over HTTP while the worker or Redis dies.

Both tests run on the live stack (PostgreSQL, Redis, a real Celery worker with embedded beat). A
worker killed with SIGKILL leaves its prefetched tasks unacknowledged in Redis until the visibility
timeout (an hour), and a Redis crash wipes the queue outright: in both cases it is the periodic
sweep of stored-but-unprocessed messages that must bring every acknowledged event to its timeline.
The Redis test starts a Redis of its own (never the machine's shared one), with gunicorn and a
worker on it, and crashes and restarts that Redis mid-stream while the worker is left running.
"""

import os
import shutil
import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests

from partners.models import InboundMessage
from tests.clock import MORNING
from tests.conftest import RedisServer, WebServer, Worker, wait_for
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class EventStream(threading.Thread):
    """Posts one location event after another (now and then a batch of three) and keeps score."""

    def __init__(self, url: str, api_key: str, references: list[str], tag: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/api/partner/v1/events"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.references = references
        self.tag = tag
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self.server_errors: list[str] = []
        self.halt = threading.Event()

    def event(self, n: int) -> dict:
        return {
            "reference": self.references[n % len(self.references)],
            "event_id": f"{self.tag}-{n}",
            "kind": "location",
            "location": {"lat": 51.5 + n / 1e5, "lng": -0.12},
            # Each of the 8 jobs gets a position every 64 s: closer ones would be thinned to one a
            # minute per source (one fact, on purpose), which is not what this test counts.
            "occurred_at": (MORNING - timedelta(hours=10) + timedelta(seconds=8 * n)).isoformat(),
        }

    def run(self) -> None:
        session = requests.Session()
        n = 0
        while not self.halt.is_set():
            events = [self.event(n + i) for i in range(3 if n % 10 == 9 else 1)]
            n += len(events)
            body = events[0] if len(events) == 1 else {"events": events}
            ids = [e["event_id"] for e in events]
            try:
                response = session.post(self.url, json=body, headers=self.headers, timeout=10)
            except requests.RequestException:
                self.refused.extend(ids)
                continue
            if 200 <= response.status_code < 300:
                self.acknowledged.extend(ids)
            else:
                self.refused.extend(ids)
                if response.status_code >= 500:
                    self.server_errors.extend(ids)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)


def start_stream(server, tag: str) -> tuple[EventStream, list[str]]:
    partner = PartnerFactory(slug=f"{tag}-fleet")
    references = []
    for i in range(8):
        shipment = ShipmentFactory(reference=f"{tag.upper()}-{i}")
        CustodyFactory(partner=partner, shipment=shipment, partner_reference=f"{tag}-job-{i}")
        references.append(shipment.reference)
    stream = EventStream(server.url, partner.api_key, [f"{tag}-job-{i}" for i in range(8)], tag)
    stream.start()
    return stream, references


def timeline_event_ids(agent_client, references: list[str]) -> Counter:
    counts: Counter = Counter()
    for reference in references:
        timeline = agent_client.get(f"/api/v1/shipments/{reference}/timeline").json()
        counts.update(entry["event_id"] for entry in timeline["entries"])
    return counts


def assert_every_acknowledged_event_is_on_its_timeline_once(stream, agent_client, references, worker) -> None:
    acknowledged = set(stream.acknowledged)
    assert len(acknowledged) == len(stream.acknowledged)

    def arrived() -> bool:
        assert worker.process.poll() is None, "the worker exited; it must survive by itself"
        return acknowledged <= set(timeline_event_ids(agent_client, references))

    arrived = wait_for(arrived, timeout=120, interval=1)
    counts = timeline_event_ids(agent_client, references)
    states = Counter(InboundMessage.objects.values_list("state", flat=True))
    assert arrived, f"{len(acknowledged - set(counts))} acknowledged events missing; messages: {states}"
    assert {event_id: n for event_id, n in counts.items() if n != 1} == {}
    # Anything else on the timelines was sent but not acknowledged (at least once, never invented).
    assert set(counts) <= acknowledged | set(stream.refused)


@pytest.fixture(scope="module")
def quick_sweep_worker(live_worker):
    """The live worker, restarted so its beat sweeps messages left waiting over 3 s (production: 120 s)."""
    previous = os.environ.get("BATON_SWEEP_AFTER_SECONDS")
    os.environ["BATON_SWEEP_AFTER_SECONDS"] = "3"
    live_worker.stop()
    live_worker.start()
    yield live_worker
    if previous is None:
        del os.environ["BATON_SWEEP_AFTER_SECONDS"]
    else:
        os.environ["BATON_SWEEP_AFTER_SECONDS"] = previous
    live_worker.stop()
    live_worker.start()


def test_events_acknowledged_while_the_worker_is_killed_reach_their_timelines_once(
    quick_sweep_worker, live_server, agent_client
):
    stream, references = start_stream(live_server, "kill")
    try:
        assert wait_for(lambda: len(stream.acknowledged) >= 60)
        quick_sweep_worker.kill()  # SIGKILL mid-stream, tasks in flight
        acknowledged_before = len(stream.acknowledged)
        assert wait_for(lambda: len(stream.acknowledged) >= acknowledged_before + 60)  # no worker at all
        quick_sweep_worker.start()
        resumed = len(stream.acknowledged)
        assert wait_for(lambda: len(stream.acknowledged) >= resumed + 60)
    finally:
        stream.stop()

    assert stream.refused == []
    assert_every_acknowledged_event_is_on_its_timeline_once(
        stream, agent_client, references, quick_sweep_worker
    )


@pytest.fixture
def own_stack(django_db_setup, tmp_path):
    """A Redis of the test's own, with gunicorn and a worker (beat sweeping after 3 s) on it."""
    redis_server = RedisServer(str(tmp_path))
    redis_server.start()
    worker = Worker(redis_url=redis_server.url, env={"BATON_SWEEP_AFTER_SECONDS": "3"})
    web = WebServer(redis_url=redis_server.url, queue=worker.queue)
    try:
        worker.start()
        web.start()
        yield redis_server, web, worker
    finally:
        web.stop()
        worker.stop()
        redis_server.stop()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="starts a redis-server of its own")
def test_events_acknowledged_while_redis_is_down_reach_their_timelines_once_with_the_worker_left_running(
    own_stack, agent_client
):
    redis_server, web, worker = own_stack
    stream, references = start_stream(web, "redis")
    try:
        assert wait_for(lambda: len(stream.acknowledged) >= 60)
        redis_server.stop()  # a crash: the queue and every unacknowledged task are gone
        outage_starts = len(stream.acknowledged)
        assert wait_for(lambda: len(stream.acknowledged) >= outage_starts + 60)  # accepted with no Redis
        assert not redis_server.answers()
        during_outage = stream.acknowledged[outage_starts:]
        redis_server.start()
        resumed = len(stream.acknowledged)
        assert wait_for(lambda: len(stream.acknowledged) >= resumed + 60, timeout=60)
    finally:
        stream.stop()

    assert stream.refused == []
    assert len(during_outage) >= 60
    assert_every_acknowledged_event_is_on_its_timeline_once(stream, agent_client, references, worker)
    assert worker.process.poll() is None  # it reconnected by itself: no supervisor restarted it
