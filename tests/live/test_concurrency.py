"""Workers processing events of one shipment at the same moment lose no update (PostgreSQL row lock)."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from partners import services
from partners.models import Custody, InboundMessage, Partner
from tests.conftest import wait_for
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Shipment
from tracking.services import build_shipment_timeline

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
# A long day with re-attempts and no terminal status, so every event moves the status.
JOURNEY = ["picked_up", "in_transit", "out_for_delivery", "attempt_failed", "in_transit", "out_for_delivery"]


def new_job(partner: Partner, reference: str) -> Custody:
    return Custody.objects.create(
        partner=partner,
        shipment=ShipmentFactory(reference=f"ORD-{reference}"),
        partner_reference=reference,
        started_at=MORNING,
    )


def one_message_per_event(partner: Partner, reference: str, count: int, *, enqueue: bool) -> list[int]:
    """`count` stored messages, each carrying one distinct event of the same shipment."""
    ids = []
    with transaction.atomic():  # queued together on commit, so the workers get them at once
        for n in range(count):
            body = {
                "reference": reference,
                "event_id": f"{reference}-{n}",
                "status": JOURNEY[n % len(JOURNEY)],
                "occurred_at": (MORNING + timedelta(minutes=n)).isoformat(),
            }
            message = services.record_inbound(
                partner,
                channel=InboundMessage.Channel.API,
                body=json.dumps(body).encode(),
                headers={},
                enqueue=enqueue,
            )
            ids.append(message.pk)
    return ids


def process_all_at_once(message_ids: list[int]) -> list[str]:
    """One thread per message, each on its own connection, released together by a barrier."""
    barrier = threading.Barrier(len(message_ids))
    results: list[str] = []
    errors: list[BaseException] = []

    def work(message_id: int) -> None:
        try:
            connection.ensure_connection()  # connect first, so the barrier lines up the work itself
            barrier.wait(timeout=30)
            results.append(services.process_inbound(message_id))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in message_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


def assert_no_update_lost(shipment: Shipment, reference: str, count: int) -> None:
    shipment.refresh_from_db()
    events = list(shipment.events.order_by("sequence", "id"))
    assert sorted(e.event_id for e in events) == sorted(f"{reference}-{n}" for n in range(count))
    assert [e.sequence for e in events] == list(range(1, count + 1))
    assert [e.occurred_at for e in events] == [MORNING + timedelta(minutes=n) for n in range(count)]
    assert all(e.applied and e.flags == [] for e in events)
    # What was persisted is what the engine makes of the full set of events now.
    rebuilt, _ = build_shipment_timeline(shipment)
    assert shipment.status == rebuilt.status == events[-1].status == JOURNEY[(count - 1) % len(JOURNEY)]
    assert shipment.last_event_at == events[-1].occurred_at


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_workers_on_one_shipment_lose_no_event_and_no_status(round_):
    assert connection.vendor == "postgresql"
    partner = PartnerFactory()
    job = new_job(partner, f"CC{round_}")
    ids = one_message_per_event(partner, f"CC{round_}", 8, enqueue=False)

    results = process_all_at_once(ids)

    assert results == ["processed"] * 8
    assert_no_update_lost(job.shipment, f"CC{round_}", 8)
    assert set(InboundMessage.objects.filter(pk__in=ids).values_list("state", "events_recorded")) == {
        ("processed", 1)
    }


def test_the_live_worker_with_two_processes_loses_no_update(live_worker):
    partner = PartnerFactory()
    job = new_job(partner, "LW")

    ids = one_message_per_event(partner, "LW", 30, enqueue=True)

    processed = InboundMessage.objects.filter(pk__in=ids, state=InboundMessage.State.PROCESSED)
    assert wait_for(lambda: processed.count() == len(ids), timeout=60)
    assert_no_update_lost(job.shipment, "LW", 30)


def process_batches_at_once(batches: list[list[int]]) -> list[dict[int, str]]:
    """One thread per batch, each on its own connection, released together by a barrier."""
    barrier = threading.Barrier(len(batches))
    results: list[dict[int, str]] = []
    errors: list[BaseException] = []

    def work(batch: list[int]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            results.append(services.process_inbound_batch(batch))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_workers_with_interleaved_batches_on_the_same_shipments_lose_no_update(round_):
    partner = PartnerFactory()
    references = [f"IB{round_}-{n}" for n in range(3)]
    jobs = [new_job(partner, reference) for reference in references]
    per_job = {
        reference: one_message_per_event(partner, reference, 8, enqueue=False) for reference in references
    }
    # Worker A gets the even messages of every shipment, worker B the odd ones, at the same moment.
    interleaved = [pk for group in zip(*per_job.values(), strict=True) for pk in group]
    batches = [interleaved[0::2], interleaved[1::2]]

    results = process_batches_at_once(batches)

    assert sorted(state for result in results for state in result.values()) == ["processed"] * 24
    for job, reference in zip(jobs, references, strict=True):
        assert_no_update_lost(job.shipment, reference, 8)


def test_two_workers_placing_positions_at_the_end_of_one_timeline_lose_none():
    partner = PartnerFactory()
    job = new_job(partner, "POS")
    ids = one_message_per_event(partner, "POS", 2, enqueue=False)
    services.process_inbound_batch(ids)  # the timeline exists: later positions are placed at its end
    positions = []
    with transaction.atomic():
        for n in range(20):
            body = {
                "reference": "POS",
                "kind": "location",
                "event_id": f"POS-l{n}",
                "location": {"lat": 51.5, "lng": -0.1 + n / 1e4},
                "occurred_at": (MORNING + timedelta(hours=1, minutes=n)).isoformat(),
            }
            positions.append(
                services.record_inbound(
                    partner,
                    channel=InboundMessage.Channel.API,
                    body=json.dumps(body).encode(),
                    headers={},
                    enqueue=False,
                ).pk
            )

    process_batches_at_once([positions[0::2], positions[1::2]])

    shipment = Shipment.objects.get(pk=job.shipment_id)
    events = list(shipment.events.order_by("sequence", "id"))
    assert [e.sequence for e in events] == list(range(1, 23))
    rebuilt, _ = build_shipment_timeline(shipment)
    assert [e.pk for e in events] == [entry.event_id for entry in rebuilt.entries]
    assert shipment.last_event_at == MORNING + timedelta(hours=1, minutes=19)
