"""Nothing acknowledged is lost: partner events streamed over HTTP while the worker or Redis dies.

Both tests run on the live stack (PostgreSQL, Redis, a real Celery worker with embedded beat). A
worker killed with SIGKILL leaves its prefetched tasks unacknowledged in Redis until the visibility
timeout (an hour), and a Redis restart wipes the queue outright: in both cases it is the periodic
sweep of stored-but-unprocessed messages that must bring every acknowledged event to its timeline.
"""

import json
import os
import shutil
import subprocess
import threading
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import kombu.exceptions
import pytest
import redis
import requests

from hub.celery import app as celery_app
from partners.models import InboundMessage
from tests.clock import MORNING
from tests.conftest import wait_for
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

# The machine's Redis, started exactly as the machine starts it (it keeps nothing on disk).
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {port} --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


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
            "occurred_at": (MORNING + timedelta(seconds=n % 3600)).isoformat(),
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


def start_stream(live_server, tag: str) -> tuple[EventStream, list[str]]:
    partner = PartnerFactory(slug=f"{tag}-fleet")
    references = []
    for i in range(8):
        shipment = ShipmentFactory(reference=f"{tag.upper()}-{i}")
        CustodyFactory(partner=partner, shipment=shipment, partner_reference=f"{tag}-job-{i}")
        references.append(shipment.reference)
    stream = EventStream(live_server.url, partner.api_key, [f"{tag}-job-{i}" for i in range(8)], tag)
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

    def arrived_under_supervision() -> bool:
        # Production runs the worker under a supervisor (systemd, Kubernetes) that restarts it when it
        # exits, as kombu's Redis transport makes it do when a late ack meets a reconnected broker.
        if worker.process.poll() is not None:
            worker.start()
        return acknowledged <= set(timeline_event_ids(agent_client, references))

    arrived = wait_for(arrived_under_supervision, timeout=120, interval=1)
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


def broker_usable() -> bool:
    # The first use of a pooled broker connection that died with the server raises; the next
    # reconnects. Use them up here rather than in the worker fixture's pings.
    try:
        celery_app.control.ping(timeout=0.2)
    except (OSError, redis.RedisError, kombu.exceptions.KombuError):
        return False
    return True


def redis_address() -> tuple[str, int]:
    parts = urlsplit(os.environ.get("REDIS_URL", ""))
    return parts.hostname or "127.0.0.1", parts.port or 6379


def redis_answers(host: str, port: int) -> bool:
    ping = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "ping"], capture_output=True, text=True)
    return ping.stdout.strip() == "PONG"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="restarts the machine's redis-server")
def test_events_acknowledged_while_redis_restarts_reach_their_timelines_once(
    quick_sweep_worker, live_server, agent_client
):
    host, port = redis_address()
    assert host in {"127.0.0.1", "localhost", "::1"}, "the test restarts a Redis on this machine only"
    stream, references = start_stream(live_server, "redis")
    try:
        assert wait_for(lambda: len(stream.acknowledged) >= 60)
        subprocess.run(["redis-cli", "-h", host, "-p", str(port), "shutdown", "nosave"], check=False)
        assert wait_for(lambda: not redis_answers(host, port), timeout=10)
        refused_before = len(stream.refused)
        assert wait_for(lambda: len(stream.refused) >= refused_before + 20)  # partners see the outage
        subprocess.run(REDIS_START.format(port=port), shell=True, check=True)
        assert wait_for(lambda: redis_answers(host, port), timeout=10)
        assert wait_for(broker_usable, timeout=30)
        resumed = len(stream.acknowledged)
        assert wait_for(lambda: len(stream.acknowledged) >= resumed + 60, timeout=60)
    finally:
        stream.stop()

    # A 5xx is allowed only for a message that was not stored: a stored one has its 202.
    stored = {
        event["event_id"]
        for body in InboundMessage.objects.filter(partner__slug="redis-fleet").values_list("body", flat=True)
        for event in (lambda data: data.get("events", [data]))(json.loads(bytes(body)))
    }
    assert stored & set(stream.server_errors) == set()
    assert_every_acknowledged_event_is_on_its_timeline_once(
        stream, agent_client, references, quick_sweep_worker
    )
