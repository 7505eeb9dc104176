"""The worker applies many messages at once: each shipment reconciled once, as if rebuilt from scratch."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from partners import services
from partners.models import Custody, InboundMessage
from tests.factories import PartnerFactory, ShipmentFactory
from tracking import changes
from tracking.models import Shipment
from tracking.services import build_shipment_timeline, reconcile_shipment

pytestmark = pytest.mark.django_db

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
JOURNEY = ["picked_up", "in_transit", "out_for_delivery", "attempt_failed", "out_for_delivery", "delivered"]


def message(partner, body: dict) -> int:
    return services.record_inbound(
        partner, channel=InboundMessage.Channel.API, body=json.dumps(body).encode(), headers={}, enqueue=False
    ).pk


def assert_persisted_equals_a_full_rebuild(shipment: Shipment) -> None:
    shipment.refresh_from_db()
    rebuilt, events = build_shipment_timeline(shipment)
    by_id = {e.pk: e for e in events}
    stored = [
        (by_id[entry.event_id].sequence, by_id[entry.event_id].applied, by_id[entry.event_id].flags)
        for entry in rebuilt.entries
    ]
    assert stored == [(n, e.applied, list(e.flags)) for n, e in enumerate(rebuilt.entries, start=1)]
    assert [(by_id[e.event_id].custody_id, by_id[e.event_id].effective_at) for e in rebuilt.entries] == [
        (e.custody_id, e.effective_at) for e in rebuilt.entries
    ]
    assert (shipment.status, shipment.eta, shipment.last_event_at, shipment.current_custody_id) == (
        rebuilt.status,
        rebuilt.eta,
        rebuilt.last_event_at,
        rebuilt.custody_id,
    )
    assert shipment.flags == list(rebuilt.flags)


@pytest.mark.parametrize("seed", range(6))
def test_batches_of_positions_and_statuses_in_any_order_persist_what_a_full_rebuild_gives(seed):
    rng = random.Random(seed)
    courier, stranger = PartnerFactory(), PartnerFactory()
    jobs = []
    for n in range(3):
        shipment = ShipmentFactory()
        jobs.append(
            Custody.objects.create(
                partner=courier, shipment=shipment, partner_reference=f"J{seed}-{n}", started_at=MORNING
            )
        )
        if n:  # the first one was never reconciled before its first event
            reconcile_shipment(shipment)
    bodies = []
    for job in jobs:
        minute = 0
        for step, status in enumerate(JOURNEY):
            minute += rng.randint(1, 30)
            bodies.append(
                (
                    courier,
                    {
                        "reference": job.partner_reference,
                        "status": status,
                        "event_id": f"{job.pk}-s{step}",
                        "occurred_at": (MORNING + timedelta(minutes=minute)).isoformat(),
                    },
                )
            )
            for ping in range(rng.randint(0, 4)):
                at = MORNING + timedelta(minutes=minute + rng.randint(-20, 20))
                body = {
                    "reference": job.partner_reference,
                    "kind": "location",
                    "event_id": f"{job.pk}-l{step}-{ping}",
                    "location": {"lat": 51.5, "lng": -0.1},
                    "occurred_at": at.isoformat(),
                }
                if rng.random() < 0.3:
                    body["eta"] = (at + timedelta(minutes=40)).isoformat()
                bodies.append((courier, body))
        bodies.append((courier, dict(bodies[-1][1])))  # a retried delivery of the last message
    rng.shuffle(bodies)
    # Mostly in order, as webhooks arrive; the shuffle above puts a share of them in the past.
    bodies.sort(key=lambda item: item[1]["occurred_at"] if rng.random() < 0.7 else "")
    ids = [message(partner, body) for partner, body in bodies]

    while ids:
        size = rng.randint(1, 12)
        states = services.process_inbound_batch(ids[:size])
        assert set(states.values()) == {"processed"}
        ids = ids[size:]

    for job in jobs:
        assert_persisted_equals_a_full_rebuild(job.shipment)
    assert stranger.pk


def test_one_batch_reconciles_each_shipment_once_and_publishes_each_change(custody, partner):
    reconcile_shipment(custody.shipment)
    told = []

    def listener(shipment, change):
        told.append((shipment.pk, change.eta_changed, change.status_changed))

    changes.subscribe(listener)
    try:
        ids = [
            message(
                partner, {"reference": "SWIFT-77", "status": "picked_up", "occurred_at": MORNING.isoformat()}
            ),
            *(
                message(
                    partner,
                    {
                        "reference": "SWIFT-77",
                        "kind": "location",
                        "location": {"lat": 51.5, "lng": -0.1},
                        "eta": (MORNING + timedelta(hours=2)).isoformat(),
                        "occurred_at": (MORNING + timedelta(minutes=n)).isoformat(),
                    },
                )
                for n in range(1, 4)
            ),
        ]
        states = services.process_inbound_batch(ids)
        # Positions alone, newer than everything: placed at the end, and the ETA change is told too.
        later = message(
            partner,
            {
                "reference": "SWIFT-77",
                "kind": "location",
                "location": {"lat": 51.5, "lng": -0.1},
                "eta": (MORNING + timedelta(hours=3)).isoformat(),
                "occurred_at": (MORNING + timedelta(minutes=10)).isoformat(),
            },
        )
        services.process_inbound_batch([later])
    finally:
        changes._listeners.remove(listener)

    assert set(states.values()) == {"processed"}
    assert told == [(custody.shipment_id, True, True), (custody.shipment_id, True, False)]
    assert custody.shipment.events.count() == 5
    assert_persisted_equals_a_full_rebuild(custody.shipment)


def test_a_message_that_cannot_be_parsed_fails_alone_and_the_rest_of_the_batch_is_applied(custody, partner):
    good = message(
        partner, {"reference": "SWIFT-77", "status": "picked_up", "occurred_at": MORNING.isoformat()}
    )
    bad = services.record_inbound(
        partner, channel=InboundMessage.Channel.API, body=b"{not json", headers={}, enqueue=False
    ).pk
    unknown = message(
        partner, {"reference": "NOBODY", "status": "picked_up", "occurred_at": MORNING.isoformat()}
    )

    states = services.process_inbound_batch([good, bad, unknown])

    assert states == {good: "processed", bad: "failed", unknown: "unmatched"}
    assert custody.shipment.events.count() == 1
    assert InboundMessage.objects.get(pk=unknown).error.endswith("NOBODY")
    assert services.process_inbound_batch([good]) == {good: "processed"}  # done already: left alone
    assert InboundMessage.objects.get(pk=good).attempts == 1
