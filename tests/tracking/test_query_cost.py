"""Processing one event costs a fixed number of queries, whatever else the tables hold."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from partners import services
from partners.models import Custody, InboundMessage, Partner
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import Shipment, TrackingEvent
from tracking.services import build_shipment_timeline, reconcile_shipment

# Processing one stored message that carries one status event, as a worker does it:
#   1 load the message with its partner     2 count the attempt
#   3 find the partner's custody            4 BEGIN
#   5 lock the shipment row (FOR UPDATE)    6 load the shipment's custody chain
#   7 which of the facts are already stored 8 how many entries the timeline has
#   9 load the shipment's events (a step    10 insert the new event in its place
#     already known gains the message as evidence instead)
#  11 save the shipment's reconciled state  12 mark the message processed
#  13 COMMIT (the events and the message's outcome together)
# An event landing before others adds one UPDATE moving them down a place. A position newer than
# the rest is placed at the end instead (no 9). The same on SQLite and PostgreSQL; a batch of
# messages costs the same queries, whatever the number of shipments.
QUERIES_PER_EVENT = 13
QUERIES_PER_POSITION = 12

pytestmark = pytest.mark.django_db(transaction=True)

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
STATUSES = ["picked_up", "in_transit", "out_for_delivery", "arriving", "delivered"]


def add_other_shipments(count: int, partner: Partner) -> None:
    """Other shipments with a full day of events each, written in bulk."""
    start = Shipment.objects.count()
    shipments = [ShipmentFactory.build(reference=f"OTHER-{start + i}") for i in range(count)]
    for i, shipment in enumerate(shipments):
        shipment.tracking_token_hash = f"other-{start + i}"
    Shipment.objects.bulk_create(shipments)
    shipments = list(Shipment.objects.filter(reference__startswith="OTHER-").order_by("id"))[start - 1 :]
    Custody.objects.bulk_create(
        Custody(partner=partner, shipment=s, partner_reference=f"O-{s.pk}", started_at=MORNING)
        for s in shipments
    )
    TrackingEvent.objects.bulk_create(
        TrackingEvent(
            shipment=s,
            partner=partner,
            kind="status",
            status=status,
            occurred_at=MORNING + timedelta(minutes=10 * n),
            received_at=MORNING + timedelta(minutes=10 * n),
            dedupe_key=f"{s.pk}-{n}",
            sequence=n + 1,
        )
        for s in shipments
        for n, status in enumerate(STATUSES)
    )


def one_event_message(partner: Partner, reference: str, status: str, minute: int) -> InboundMessage:
    body: dict = {
        "reference": reference,
        "event_id": f"{reference}-{minute}",
        "occurred_at": (MORNING + timedelta(minutes=minute)).isoformat(),
    }
    if status == "location":
        body |= {"kind": "location", "location": {"lat": 51.5, "lng": -0.1 + minute / 1e4}}
    else:
        body["status"] = status
    return services.record_inbound(
        partner, channel=InboundMessage.Channel.API, body=json.dumps(body).encode(), headers={}, enqueue=False
    )


def queries_to_process(message: InboundMessage) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert services.process_inbound(message.pk) == "processed"
    return [q["sql"] for q in captured.captured_queries]


@pytest.fixture
def journey(db) -> Custody:
    """The shipment under test, a few events into its day."""
    courier = PartnerFactory(slug="swift")
    custody = Custody.objects.create(
        partner=courier,
        shipment=ShipmentFactory(reference="ORD-1"),
        partner_reference="SW-1",
        started_at=MORNING,
    )
    for minute, status in enumerate(STATUSES[:2]):
        services.process_inbound(one_event_message(courier, "SW-1", status, minute).pk)
    return custody


def test_one_event_costs_the_same_queries_beside_1_or_200_other_shipments(journey):
    others = PartnerFactory(slug="other-fleet")
    add_other_shipments(1, others)
    with_one_other = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    add_other_shipments(199, others)
    assert TrackingEvent.objects.exclude(shipment=journey.shipment).count() == 200 * len(STATUSES)
    with_200_others = queries_to_process(one_event_message(journey.partner, "SW-1", "arriving", 40))

    assert len(with_one_other) == len(with_200_others) == QUERIES_PER_EVENT
    journey.shipment.refresh_from_db()
    assert journey.shipment.status == "arriving"
    assert list(journey.shipment.events.order_by("sequence").values_list("sequence", flat=True)) == [
        1,
        2,
        3,
        4,
    ]


def test_every_query_of_one_event_is_narrowed_to_its_message_partner_or_shipment(journey):
    add_other_shipments(20, PartnerFactory(slug="other-fleet"))

    queries = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    for sql in queries:
        if sql.split()[0].upper() in {"SELECT", "UPDATE"}:
            assert "WHERE" in sql.upper(), sql


def test_a_late_event_that_renumbers_the_whole_timeline_costs_one_range_update_more(journey):
    on_time = queries_to_process(one_event_message(journey.partner, "SW-1", "out_for_delivery", 30))

    # Before everything else: every stored entry moves one place down, in one ranged UPDATE.
    late = queries_to_process(one_event_message(journey.partner, "SW-1", "info_received", -30))

    assert len(late) == len(on_time) + 1
    assert list(journey.shipment.events.order_by("sequence").values_list("status", flat=True)) == [
        "info_received",
        "picked_up",
        "in_transit",
        "out_for_delivery",
    ]


def test_a_newer_position_is_placed_at_the_end_without_reloading_the_timeline(journey):
    add_other_shipments(20, PartnerFactory(slug="other-fleet"))

    queries = queries_to_process(one_event_message(journey.partner, "SW-1", "location", 30))

    assert len(queries) == QUERIES_PER_POSITION
    assert not [q for q in queries if q.startswith("UPDATE") and "tracking_trackingevent" in q]
    shipment = Shipment.objects.get(pk=journey.shipment_id)
    events = list(shipment.events.order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[-1].kind == "location"
    assert shipment.last_event_at == MORNING + timedelta(minutes=30)


@pytest.mark.parametrize("kind", ["location", "out_for_delivery"])
def test_a_batch_costs_the_same_queries_for_5_or_50_shipments(db, kind):
    courier = PartnerFactory(slug="batchy")
    jobs = [
        Custody.objects.create(
            partner=courier,
            shipment=ShipmentFactory(reference=f"ORD-B{n}"),
            partner_reference=f"B-{n}",
            started_at=MORNING,
        )
        for n in range(50)
    ]
    for job in jobs:
        reconcile_shipment(job.shipment)

    def cost(count: int, minute: int) -> int:
        ids = [one_event_message(courier, job.partner_reference, kind, minute).pk for job in jobs[:count]]
        with CaptureQueriesContext(connection) as captured:
            states = services.process_inbound_batch(ids)
        assert set(states.values()) == {"processed"}
        return len(captured.captured_queries)

    few, many = cost(5, 10), cost(50, 20)

    if kind == "location":  # placed at the end: the same queries however many shipments
        assert few == many
    else:  # a status rebuilds each shipment's timeline: a few queries a shipment, no more
        assert many - few <= 4 * 45
    assert all(j.shipment.events.count() == (2 if n < 5 else 1) for n, j in enumerate(jobs))


def add_earlier_entries(custody: Custody, count: int) -> None:
    """`count` positions before the journey's first event, numbered as a rebuild would."""
    TrackingEvent.objects.filter(shipment=custody.shipment).update(sequence=F("sequence") + count)
    TrackingEvent.objects.bulk_create(
        TrackingEvent(
            shipment=custody.shipment,
            partner=custody.partner,
            kind="location",
            latitude=51.5,
            longitude=-0.1,
            occurred_at=MORNING - timedelta(hours=12) + timedelta(seconds=10 * n),
            received_at=MORNING - timedelta(hours=12) + timedelta(seconds=10 * n),
            effective_at=MORNING - timedelta(hours=12) + timedelta(seconds=10 * n),
            custody=custody,
            applied=True,
            dedupe_key=f"early-{n}",
            sequence=n + 1,
        )
        for n in range(count)
    )


def test_a_late_event_costs_the_same_queries_on_a_timeline_of_4_or_1200_entries(journey):
    short = queries_to_process(one_event_message(journey.partner, "SW-1", "info_received", -30))
    add_earlier_entries(journey, 1200)
    reconcile_shipment(Shipment.objects.get(pk=journey.shipment_id))  # nothing moves: numbered already

    long = queries_to_process(one_event_message(journey.partner, "SW-1", "pending", -20))

    assert len(long) == len(short)
    sequences = list(journey.shipment.events.order_by("sequence").values_list("sequence", "status"))
    assert [n for n, _status in sequences] == list(range(1, 1205))
    assert [status for _n, status in sequences[-4:]] == [
        "info_received",
        "pending",
        "picked_up",
        "in_transit",
    ]


def test_several_late_events_in_one_batch_leave_the_timeline_numbered_in_order(journey):
    add_earlier_entries(journey, 30)
    reconcile_shipment(Shipment.objects.get(pk=journey.shipment_id))
    late = [
        one_event_message(journey.partner, "SW-1", "pending", -(12 * 60) + 1),  # among the positions
        one_event_message(journey.partner, "SW-1", "info_received", -30),  # before the journey
        one_event_message(journey.partner, "SW-1", "out_for_delivery", 30),  # at the end
    ]

    assert set(services.process_inbound_batch([m.pk for m in late]).values()) == {"processed"}

    shipment = Shipment.objects.get(pk=journey.shipment_id)
    stored = list(shipment.events.order_by("sequence"))
    expected = list(build_shipment_timeline(shipment)[0].entries)
    assert [e.sequence for e in stored] == list(range(1, 36))
    assert [e.pk for e in stored] == [entry.event_id for entry in expected]
    assert [e.status for e in stored if e.kind == "status"] == [
        "pending",
        "info_received",
        "picked_up",
        "in_transit",
        "out_for_delivery",
    ]
