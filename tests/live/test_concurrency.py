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
